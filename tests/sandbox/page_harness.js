// Runs the sandbox page's app.js in Node against a live sandbox, with a minimal fake DOM, and
// prints what a person would see after a scenario (tests/sandbox/test_sandbox_web.py).
// Usage: node page_harness.js APP_JS BASE_URL HASH SCENARIO
"use strict";
const fs = require("fs");
const vm = require("vm");

const [appPath, base, hash, scenario] = process.argv.slice(2);

class FakeNode {
  constructor(tag, text = "") {
    this.tagName = tag; this.children = []; this._text = text; this.hidden = true;
    this.disabled = false; this.value = ""; this.placeholder = ""; this.src = "";
    this.className = ""; this.attributes = {}; this.listeners = {}; this.style = {};
    this.scrollTop = 0; this.scrollHeight = 0; this.clientHeight = 0; this.returnValue = "";
    this.classList = { add() {}, remove() {}, toggle() {}, contains() { return false; } };
  }
  addEventListener(type, listener) { (this.listeners[type] ||= []).push(listener); }
  setAttribute(key, value) { this.attributes[key] = value; }
  append(...nodes) { this.children.push(...nodes.map(asNode)); }
  replaceChildren(...nodes) { this.children = nodes.map(asNode); this._text = ""; }
  get textContent() { return this._text + this.children.map((c) => c.textContent).join(""); }
  set textContent(value) { this._text = String(value); this.children = []; }
  focus() {} showModal() {}
  click() { for (const f of this.listeners.click || []) f({ preventDefault() {}, stopPropagation() {} }); }
  find(predicate) {
    if (predicate(this)) return this;
    for (const child of this.children) { const found = child.find(predicate); if (found) return found; }
    return null;
  }
  findAll(predicate, into = []) {
    if (predicate(this)) into.push(this);
    for (const child of this.children) child.findAll(predicate, into);
    return into;
  }
}

const asNode = (n) => (n instanceof FakeNode ? n : new FakeNode("#text", String(n)));
const elements = new Map();
const context = {
  console, URL, URLSearchParams, JSON, Number, String, Object, Math, Set, Promise, Date, Error,
  Node: FakeNode,
  FormData: class {},
  document: {
    getElementById(id) {
      if (!elements.has(id)) elements.set(id, new FakeNode("div"));
      return elements.get(id);
    },
    createElement: (tag) => new FakeNode(tag),
    createTextNode: (text) => new FakeNode("#text", text),
    createDocumentFragment: () => new FakeNode("#fragment"),
  },
  window: { addEventListener() {} },
  history: { replaceState() {} },
  location: { hash },
  fetch: (path, init) => fetch(base + path, init),
  setInterval: () => 0,
  setTimeout: () => 0,
  clearTimeout: () => {},
  prompt: () => null,
};
vm.createContext(context);
vm.runInContext(fs.readFileSync(appPath, "utf8"), context, { filename: "app.js" });
const page = (code) => vm.runInContext(code, context);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function settle() {
  for (let i = 0; i < 50 && page("ui.busy"); i += 1) await sleep(20);
  await page("refresh()");
  await sleep(50);
  await page("refreshTranscript()");
}

function seen() {
  const notice = context.document.getElementById("notice");
  const toast = context.document.getElementById("toast");
  const messages = context.document.getElementById("messages");
  return {
    me: page("ui.me"),
    notice: notice.hidden ? null : notice.textContent,
    actAs: notice.findAll((n) => n.tagName === "button").map((b) => b.textContent),
    toast: toast.hidden ? null : toast.textContent,
    buttons: messages.findAll((n) => n.tagName === "button")
      .map((b) => ({ text: b.textContent, disabled: b.disabled || "disabled" in b.attributes })),
    times: messages.findAll((n) => n.className === "meta").map((n) => n.textContent),
  };
}

(async () => {
  await settle();
  const result = { opened: seen() };
  if (scenario === "act-as") {
    const notice = context.document.getElementById("notice");
    notice.find((n) => n.tagName === "button").click();
    await settle();
    result.after = seen();
  } else if (scenario === "press-again") {
    const button = context.document.getElementById("messages")
      .find((n) => n.tagName === "button" && !("disabled" in n.attributes));
    button.click();
    for (let i = 0; i < 100; i += 1) {
      await sleep(100);
      await settle();
      if (seen().toast) break;
    }
    result.after = seen();
  }
  process.stdout.write(JSON.stringify(result));
})().catch((error) => { console.error(error); process.exit(1); });
