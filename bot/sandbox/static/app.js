// Tip-line sandbox web chat: act as residents and officers against the local Bot API sandbox.
// Plain JS, no build step, no external resources. Polls the control API about once a second.
"use strict";

const API = "/sandbox/api";
const ui = {
  data: null,            // last /state answer
  me: null,              // id of the user we act as
  chatId: null,          // selected chat
  transcript: null,      // last transcript answer
  shownVersion: -1,      // version of the transcript on screen
  replyTo: null,         // {message_id, text}
  forceReplySeen: 0,     // newest bot message id whose ForceReply was applied
  seenAnswers: new Set(),
  dismissedKeyboard: null,
  pendingFile: null,     // {kind, file}
  busy: false,
  stick: true,           // keep the transcript scrolled to the newest message
};

const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

async function api(path, options = {}) {
  const init = { method: options.method || "GET", headers: {} };
  if (options.json !== undefined) {
    init.method = options.method || "POST";
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(options.json);
  } else if (options.form !== undefined) {
    init.method = "POST";
    init.body = options.form;
  }
  const response = await fetch(API + path, init);
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

function toast(text, alert = false) {
  const box = $("toast");
  box.textContent = text;
  box.className = alert ? "toast alert" : "toast";
  box.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { box.hidden = true; }, alert ? 6000 : 3000);
}

function safeUrl(url) {
  try {
    const parsed = new URL(url, "https://example.invalid");
    return ["http:", "https:", "tg:"].includes(parsed.protocol) ? url : null;
  } catch (error) {
    return null;
  }
}

// ---- formatted text -------------------------------------------------------------------------
// Entity offsets are UTF-16 code units: exactly how JavaScript indexes strings.

function wrapEntity(entity, inner, segmentText) {
  switch (entity.type) {
    case "bold": return el("b", {}, inner);
    case "italic": return el("i", {}, inner);
    case "underline": return el("u", {}, inner);
    case "strikethrough": return el("s", {}, inner);
    case "spoiler": return el("span", { class: "spoiler", title: "spoiler" }, inner);
    case "code": return el("code", {}, inner);
    case "pre": return el("pre", {}, inner);
    case "blockquote":
    case "expandable_blockquote": return el("blockquote", {}, inner);
    case "text_link": {
      const href = safeUrl(entity.url);
      return href ? el("a", { href, target: "_blank", rel: "noopener" }, inner) : inner;
    }
    case "url": {
      const href = safeUrl(/^[a-z]+:/i.test(segmentText) ? segmentText : "http://" + segmentText);
      return href ? el("a", { href, target: "_blank", rel: "noopener" }, inner) : inner;
    }
    case "bot_command":
      return el("a", { href: "#", onclick: (event) => { event.preventDefault(); sendText(segmentText); } }, inner);
    case "mention":
    case "hashtag":
    case "email":
      return el("span", { style: "color: var(--accent-dark)" }, inner);
    default: return inner;
  }
}

function renderText(text, entities) {
  const fragment = document.createDocumentFragment();
  if (!text) return fragment;
  const list = entities || [];
  const cuts = new Set([0, text.length]);
  for (const entity of list) {
    cuts.add(entity.offset);
    cuts.add(Math.min(entity.offset + entity.length, text.length));
  }
  const points = [...cuts].sort((a, b) => a - b);
  for (let index = 0; index < points.length - 1; index += 1) {
    const start = points[index];
    const end = points[index + 1];
    let node = document.createTextNode(text.slice(start, end));
    const active = list.filter((e) => e.offset <= start && e.offset + e.length >= end);
    active.sort((a, b) => b.length - a.length);
    for (const entity of active.reverse()) {
      const whole = text.slice(entity.offset, entity.offset + entity.length);
      node = wrapEntity(entity, node, whole);
    }
    fragment.append(node);
  }
  return fragment;
}

// ---- side panel -----------------------------------------------------------------------------

function userById(id) {
  return (ui.data?.users || []).find((u) => u.id === id);
}

function chatById(id) {
  return (ui.data?.chats || []).find((c) => c.id === id);
}

function isPresent(status) {
  return ["member", "administrator", "creator"].includes(status);
}

function renderUsers() {
  const select = $("me");
  const users = ui.data.users;
  const current = String(ui.me);
  select.replaceChildren(...users.map((u) => el("option", { value: u.id }, `${u.full_name} (${u.id})`)));
  if (users.some((u) => String(u.id) === current)) select.value = current;
  else if (users.length) { ui.me = users[0].id; select.value = String(ui.me); }
}

function chatItem(chat) {
  const user = chat.type === "private" ? userById(chat.id) : null;
  const badges = [];
  if (chat.type !== "private") badges.push(chat.type);
  if (user?.blocked) badges.push("blocked");
  if (user && !user.started) badges.push("not started");
  if (chat.migrated_to) badges.push("migrated");
  if (chat.type !== "private" && !isPresent(chat.bot_status)) badges.push(`bot ${chat.bot_status}`);
  const item = el("li", { class: chat.id === ui.chatId ? "active" : "", onclick: () => selectChat(chat.id) },
    el("span", { class: "name" }, chat.name, ...badges.map((b) => el("span", { class: "badge" }, b))),
    el("span", { class: "last muted" }, chat.last || "—"));
  return item;
}

function renderChats() {
  const chats = ui.data.chats;
  $("private-list").replaceChildren(...chats.filter((c) => c.type === "private").map(chatItem));
  $("group-list").replaceChildren(...chats.filter((c) => c.type !== "private").map(chatItem));
  $("bot-name").textContent = `${ui.data.bot.first_name} (@${ui.data.bot.username})`;
}

function selectChat(chatId) {
  ui.chatId = chatId;
  ui.shownVersion = -1;
  ui.replyTo = null;
  ui.forceReplySeen = Number.MAX_SAFE_INTEGER;  // do not jump into old ForceReply prompts
  ui.dismissedKeyboard = null;
  const chat = chatById(chatId);
  // a private chat is its user's; in a group "You are" stays as it is: when that user is not a
  // member, the notice says so and offers the members to act as (never switched silently)
  if (chat?.type === "private") ui.me = chatId;
  $("chats").classList.remove("open");
  history.replaceState(null, "", `#chat=${chatId}&me=${ui.me}`);
  renderUsers();
  renderChats();
  renderReplyBar();
  refreshTranscript(true);
}

// ---- transcript -----------------------------------------------------------------------------

function timeOf(date) {
  // 24 h in the bot's time zone (ICT by default), like the times in the bot's own texts
  return new Date(date * 1000).toLocaleTimeString("en-GB", {
    hour: "2-digit", minute: "2-digit", hourCycle: "h23",
    timeZone: ui.data?.time_zone || "Asia/Ho_Chi_Minh",
  });
}

function personName(user) {
  if (!user) return "";
  return [user.first_name, user.last_name].filter(Boolean).join(" ");
}

function serviceText(m) {
  if (m.new_chat_members) return `${personName(m.from)} added ${m.new_chat_members.map(personName).join(", ")}`;
  if (m.left_chat_member) return `${personName(m.left_chat_member)} left the group`;
  if (m.migrate_to_chat_id) return `Group upgraded to a supergroup (${m.migrate_to_chat_id})`;
  if (m.migrate_from_chat_id) return `Supergroup created from group ${m.migrate_from_chat_id}`;
  return null;
}

function fileUrl(fileId) {
  return `${API}/files/${encodeURIComponent(fileId)}`;
}

function mediaNodes(m) {
  const nodes = [];
  if (m.photo) {
    const size = m.photo.find((s) => Math.max(s.width, s.height) >= 800) || m.photo[m.photo.length - 1];
    nodes.push(el("img", {
      class: "photo", src: fileUrl(size.file_id), alt: "photo",
      onload: () => { if (ui.stick) $("messages").scrollTop = $("messages").scrollHeight; },
    }));
  }
  if (m.document) {
    const kb = Math.max(1, Math.round((m.document.file_size || 0) / 1024));
    nodes.push(el("div", { class: "document" }, "📎 ",
      el("a", { href: fileUrl(m.document.file_id), target: "_blank", rel: "noopener" },
        m.document.file_name || "file"), ` (${kb} KB, ${m.document.mime_type || "?"})`));
  }
  if (m.location) {
    nodes.push(el("div", { class: "location" },
      `📍 ${m.location.latitude.toFixed(5)}, ${m.location.longitude.toFixed(5)}`));
  }
  return nodes;
}

function keyboardNode(m) {
  const rows = m.reply_markup?.inline_keyboard;
  if (!rows || m._deleted) return null;
  return el("div", { class: "keyboard" }, ...rows.map((row) => el("div", { class: "krow" },
    ...row.map((button) => {
      if (button.url) {
        const href = safeUrl(button.url);
        return el("a", { href: href || "#", target: "_blank", rel: "noopener" }, `${button.text} ↗`);
      }
      if (button.callback_data !== undefined) {
        if (!canAct(m.chat)) {
          return el("button", { type: "button", disabled: true,
            title: `${personName(userById(ui.me)) || ui.me} is not in this group` }, button.text);
        }
        return el("button", { type: "button", title: button.callback_data, onclick: (event) => {
          event.stopPropagation();
          pressButton(m, button.callback_data);
        } }, button.text);
      }
      return el("button", { type: "button", disabled: true }, button.text);
    }))));
}

function quoteNode(reply) {
  if (!reply) return null;
  const text = reply.text || reply.caption || (reply.photo ? "🖼 Photo" : reply.document ? "📎 File" : "…");
  return el("div", { class: "quote" }, el("div", { class: "sender" }, personName(reply.from)), text.slice(0, 120));
}

function messageNode(m) {
  const service = serviceText(m);
  if (service) return el("div", { class: "service" }, service);
  const botId = ui.data.bot.id;
  const fromBot = m.from?.id === botId;
  const mine = m.from?.id === ui.me;
  const text = m.text ?? m.caption;
  const entities = m.text !== undefined ? m.entities : m.caption_entities;
  const hints = [];
  if (m._markup?.force_reply) {
    hints.push(el("div", { class: "hint" },
      `↩ the bot asks for a reply${m._markup.input_field_placeholder ? `: “${m._markup.input_field_placeholder}”` : ""}`));
  }
  const meta = [timeOf(m.date)];
  if (m.edit_date) meta.unshift("edited");
  if (m._deleted) meta.unshift("deleted");
  if (m.media_group_id) meta.unshift("album");
  const bubble = el("div", {
    class: `bubble${m._deleted ? " deleted" : ""}`,
    title: `message ${m.message_id} — click to reply`,
    onclick: () => setReply(m),
  },
  mine ? null : el("div", { class: "sender" }, fromBot ? `🤖 ${personName(m.from)}` : personName(m.from)),
  m.forward_origin ? el("div", { class: "forwarded" },
    `Forwarded from ${personName(m.forward_origin.sender_user) || m.forward_origin.sender_user_name || "?"}`) : null,
  quoteNode(m.reply_to_message),
  ...mediaNodes(m),
  text ? el("div", { class: "content" }, renderText(text, entities)) : null,
  keyboardNode(m),
  ...hints,
  el("div", { class: "meta" }, meta.join(" · ")));
  return el("div", { class: `row ${fromBot ? "bot" : mine ? "mine" : "other"}` }, bubble);
}

function canAct(chat) {
  const known = chatById(chat.id) || chat;
  return known.type === "private" || isPresent((known.members || {})[String(ui.me)]);
}

function renderNotice(t) {
  const chat = t.chat;
  const notice = $("notice");
  notice.replaceChildren();
  const user = chat.type === "private" ? userById(chat.id) : null;
  let text = "";
  if (user?.blocked) text = "You blocked the bot: its messages to you fail with 403.";
  else if (chat.migrated_to) text = `This group was upgraded; it continues as chat ${chat.migrated_to}.`;
  else if (!t.bot_present) text = `The bot is not in this group (${chat.bot_status}).`;
  else if (chat.type !== "private" && !isPresent(chat.members[String(ui.me)])) {
    const name = personName(userById(ui.me)) || String(ui.me);
    const present = Object.entries(chat.members).filter(([, status]) => isPresent(status));
    notice.append(`You are ${name}, who is not in this group: ${name} cannot write or press `
      + `buttons here. Join it${present.length ? ", or act as: " : "."}`,
    ...present.map(([id, status]) => el("button", { type: "button", class: "small act-as",
      onclick: () => actAs(Number(id)) },
    `${personName(userById(Number(id))) || id}${status === "administrator" ? " ★" : ""}`)));
    notice.hidden = false;
    return;
  } else if (chat.type !== "private") {
    text = "Privacy mode: the bot only sees /commands, replies to its messages and service messages.";
  }
  notice.textContent = text;
  notice.hidden = !text;
}

function renderHead(t) {
  const chat = t.chat;
  $("chat-title").textContent = chat.name;
  const user = chat.type === "private" ? userById(chat.id) : null;
  const members = Object.entries(chat.members).filter(([, s]) => isPresent(s))
    .map(([id, status]) => `${personName(userById(Number(id))) || id}${status === "administrator" ? " ★" : ""}`);
  $("chat-sub").textContent = chat.type === "private"
    ? `private chat · id ${chat.id}${user?.phone_number ? " · phone " + user.phone_number : ""}`
    : `${chat.type} · id ${chat.id} · ${members.join(", ")}`;
  const block = $("block");
  block.hidden = chat.type !== "private";
  block.textContent = user?.blocked ? "Unblock bot" : "Block bot";
  const join = $("join");
  join.hidden = chat.type === "private" || isPresent(chat.members[String(ui.me)]) || Boolean(chat.migrated_to);
}

function renderReplyKeyboard(t) {
  const box = $("reply-keyboard");
  const keyboard = t.reply_keyboard;
  const key = keyboard ? JSON.stringify(keyboard) : null;
  if (!keyboard || key === ui.dismissedKeyboard || t.chat.type !== "private") {
    box.hidden = true;
    return;
  }
  box.replaceChildren(...keyboard.keyboard.map((row) => el("div", { class: "krow" }, ...row.map((button) => {
    const label = typeof button === "string" ? button : button.text;
    return el("button", { type: "button", onclick: () => {
      if (keyboard.one_time_keyboard) ui.dismissedKeyboard = key;
      if (button.request_location) $("location-dialog").showModal();
      else if (button.request_contact) toast("Sharing contacts is not simulated by the sandbox.");
      else sendText(label);
    } }, label);
  }))));
  box.hidden = false;
}

function applyForceReply(t) {
  const bots = t.messages.filter((m) => m.from?.id === ui.data.bot.id && !m._deleted);
  const last = bots[bots.length - 1];
  if (ui.forceReplySeen === Number.MAX_SAFE_INTEGER) {
    ui.forceReplySeen = last ? last.message_id : 0;
    return;
  }
  if (last && last.message_id > ui.forceReplySeen && last._markup?.force_reply) {
    ui.forceReplySeen = last.message_id;
    setReply(last);
    if (last._markup.input_field_placeholder) $("text").placeholder = last._markup.input_field_placeholder;
  } else if (last) {
    ui.forceReplySeen = Math.max(ui.forceReplySeen, last.message_id);
  }
}

function showAnswers(t, quiet) {
  // quiet: the chat was just opened (or the page loaded): answers given before are not news
  for (const answer of t.answers) {
    if (ui.seenAnswers.has(answer.id)) continue;
    ui.seenAnswers.add(answer.id);
    if (!quiet && answer.user_id === ui.me && answer.answer?.text) toast(answer.answer.text, answer.answer.show_alert);
  }
}

function renderTranscript(t) {
  const box = $("messages");
  const opened = ui.shownVersion === -1;
  ui.stick = opened || box.scrollHeight - box.scrollTop - box.clientHeight < 60;
  box.replaceChildren(...t.messages.map(messageNode));
  if (ui.stick) box.scrollTop = box.scrollHeight;
  renderHead(t);
  renderNotice(t);
  renderReplyKeyboard(t);
  applyForceReply(t);
  showAnswers(t, opened);
  const typing = $("typing");
  typing.hidden = !t.action;
  typing.textContent = t.action ? `${ui.data.bot.first_name} is ${t.action.replace(/_/g, " ")}…` : "";
  const canWrite = t.chat.type === "private" || isPresent(t.chat.members[String(ui.me)]);
  for (const id of ["text", "send", "attach-photo", "attach-file", "share-location"]) {
    $(id).disabled = !canWrite || Boolean(t.chat.migrated_to);
  }
}

async function refreshTranscript(force = false) {
  if (ui.chatId === null) return;
  const chatId = ui.chatId;
  const t = await api(`/chats/${chatId}/transcript`);
  if (chatId !== ui.chatId) return;
  if (!force && t.version === ui.shownVersion) return;
  ui.transcript = t;
  renderTranscript(t);
  ui.shownVersion = t.version;
}

// ---- actions --------------------------------------------------------------------------------

function setReply(m) {
  if (m._deleted) return;
  const text = m.text || m.caption || (m.photo ? "🖼 Photo" : m.document ? "📎 File" : "message");
  ui.replyTo = { message_id: m.message_id, text: `${personName(m.from)}: ${text}` };
  renderReplyBar();
  $("text").focus();
}

function renderReplyBar() {
  $("reply-bar").hidden = !ui.replyTo;
  $("reply-text").textContent = ui.replyTo ? `Replying to ${ui.replyTo.text}` : "";
  if (!ui.replyTo) $("text").placeholder = "Message";
}

function target() {
  const chat = chatById(ui.chatId);
  return chat && chat.type !== "private" ? { chat_id: ui.chatId } : {};
}

async function act(work) {
  try {
    await work();
    ui.replyTo = null;
    renderReplyBar();
    await refresh();
  } catch (error) {
    toast(`⚠ ${error.message}`, true);
  }
}

function sendText(text) {
  if (!text.trim() || ui.chatId === null) return;
  return act(() => api("/messages/text", { json: {
    user_id: ui.me, text, ...target(),
    reply_to_message_id: ui.replyTo?.message_id,
  } }));
}

function sendFile(kind, file, caption) {
  const form = new FormData();
  form.append("user_id", String(ui.me));
  if (target().chat_id) form.append("chat_id", String(ui.chatId));
  if (caption) form.append("caption", caption);
  if (ui.replyTo) form.append("reply_to_message_id", String(ui.replyTo.message_id));
  form.append("file", file, file.name);
  return act(() => api(`/messages/${kind}`, { form }));
}

function pressButton(m, data) {
  return act(async () => {
    const chatId = m.chat.id;
    await api("/buttons", { json: { user_id: ui.me, chat_id: chatId, message_id: m.message_id, callback_data: data } });
  });
}

function pickFile(kind, file) {
  if (!file) return;
  ui.pendingFile = { kind, file };
  $("caption-title").textContent = kind === "photo" ? "Send as photo (compressed, metadata removed)" : "Send as file (exact bytes)";
  const preview = $("caption-preview");
  if (preview.src.startsWith("blob:")) URL.revokeObjectURL(preview.src);
  preview.src = file.type.startsWith("image/") ? URL.createObjectURL(file) : "";
  $("caption").value = "";
  $("caption-dialog").showModal();
}

function actAs(userId) {
  ui.me = userId;
  history.replaceState(null, "", `#chat=${ui.chatId}&me=${ui.me}`);
  renderUsers();
  const chat = chatById(ui.chatId);
  if (chat?.type === "private") selectChat(ui.me);
  else if (ui.transcript) renderTranscript(ui.transcript);
}

// ---- polling and wiring ---------------------------------------------------------------------

async function refresh() {
  if (ui.busy) return;
  ui.busy = true;
  try {
    const data = await api("/state");
    const changed = !ui.data || data.version !== ui.data.version;
    ui.data = data;
    if (changed) {
      renderUsers();
      renderChats();
    }
    if (ui.chatId === null && data.chats.length) selectChat(initialChat(data));
    else await refreshTranscript();
  } catch (error) {
    console.warn("sandbox refresh failed", error);
  } finally {
    ui.busy = false;
  }
}

function initialChat(data) {
  const params = new URLSearchParams(location.hash.slice(1));
  const wanted = Number(params.get("chat"));
  const me = Number(params.get("me"));
  if (me && data.users.some((u) => u.id === me)) ui.me = me;
  return data.chats.some((c) => c.id === wanted) ? wanted : data.chats[0].id;
}

function wire() {
  $("composer").addEventListener("submit", (event) => {
    event.preventDefault();
    const input = $("text");
    const text = input.value;
    input.value = "";
    sendText(text);
  });
  $("me").addEventListener("change", (event) => actAs(Number(event.target.value)));
  $("reply-cancel").addEventListener("click", () => { ui.replyTo = null; renderReplyBar(); });
  $("attach-photo").addEventListener("click", () => $("photo-input").click());
  $("attach-file").addEventListener("click", () => $("file-input").click());
  $("photo-input").addEventListener("change", (event) => { pickFile("photo", event.target.files[0]); event.target.value = ""; });
  $("file-input").addEventListener("change", (event) => { pickFile("document", event.target.files[0]); event.target.value = ""; });
  $("caption-dialog").addEventListener("close", () => {
    const pending = ui.pendingFile;
    ui.pendingFile = null;
    if (pending && $("caption-dialog").returnValue === "ok") sendFile(pending.kind, pending.file, $("caption").value);
  });
  $("share-location").addEventListener("click", () => $("location-dialog").showModal());
  $("location-dialog").addEventListener("close", () => {
    if ($("location-dialog").returnValue !== "ok") return;
    act(() => api("/messages/location", { json: {
      user_id: ui.me, latitude: Number($("lat").value), longitude: Number($("lon").value), ...target(),
    } }));
  });
  $("block").addEventListener("click", () => {
    const user = userById(ui.chatId);
    act(() => api(`/users/${ui.chatId}/block`, { json: { blocked: !user?.blocked } }));
  });
  $("join").addEventListener("click", () => act(() => api(`/groups/${ui.chatId}/members`, { json: { user_id: ui.me } })));
  $("new-user").addEventListener("click", () => {
    const name = prompt("First name of the new user", "Người dân");
    if (name) act(async () => { const user = await api("/users", { json: { first_name: name } }); ui.me = user.id; });
  });
  $("new-group").addEventListener("click", () => {
    const title = prompt("Title of the new group (you become its admin)", "Công an xã – tin báo");
    if (title) act(async () => { const chat = await api("/groups", { json: { title, admins: [ui.me] } }); selectChat(chat.id); });
  });
  $("toggle-chats").addEventListener("click", () => $("chats").classList.toggle("open"));
  window.addEventListener("hashchange", () => {
    if (!ui.data) return;
    const wanted = initialChat(ui.data);
    if (wanted !== ui.chatId) selectChat(wanted);
  });
}

wire();
refresh();
setInterval(refresh, 1000);
