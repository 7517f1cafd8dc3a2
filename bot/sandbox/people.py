"""What people do in the sandbox: create accounts and groups, write, send media, press buttons.

These are the "other side" of the Bot API: each action stores a message (or a button press)
the way a Telegram client would produce it and emits the update the bot would receive.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

from . import members
from .errors import ApiError
from .files import Rendition, recompress
from .models import (
    GROUP,
    JSON,
    PRIVATE,
    SUPERGROUP,
    ChatState,
    SandboxChat,
    SandboxUser,
    StoredMessage,
)
from .text import detect_entities
from .world import CallbackQuery, World, now


def create_user(
    world: World,
    first_name: str,
    *,
    last_name: str | None = None,
    username: str | None = None,
    language_code: str | None = "vi",
    phone_number: str | None = None,
    user_id: int | None = None,
) -> SandboxUser:
    """Register an account (not yet talking to the bot)."""
    new_id = user_id if user_id is not None else world.allocate_user_id()
    if new_id in world.users:
        raise ValueError(f"user id {new_id} is taken")
    user = SandboxUser(new_id, first_name, last_name, username, language_code, phone_number)
    world.users[new_id] = user
    world.activity.notify()
    return user


def create_group(
    world: World,
    title: str,
    *,
    members_: Sequence[int],
    admins: Sequence[int],
    supergroup: bool,
    chat_id: int | None,
) -> SandboxChat:
    """A group with the bot in it; emits `my_chat_member` and the "bot joined" message."""
    new_id = chat_id if chat_id is not None else world.allocate_group_id(supergroup)
    if new_id in world.chats:
        raise ValueError(f"chat id {new_id} is taken")
    roster: dict[int, str] = {}
    for user_id in members_:
        world.user(user_id)
        roster[user_id] = members.MEMBER
    for user_id in admins:
        world.user(user_id)
        roster[user_id] = members.ADMINISTRATOR
    if not roster:
        owner = create_user(world, "Quản trị nhóm")
        roster[owner.id] = members.ADMINISTRATOR
    chat = SandboxChat(new_id, SUPERGROUP if supergroup else GROUP, title=title)
    state = ChatState(chat=chat, members=roster, bot_status=members.LEFT)
    world.chats[new_id] = state
    actor = world.group_actor(state)
    world.emit_bot_status(state, actor, members.MEMBER)
    _service(world, state, actor, {"new_chat_members": [world.bot.to_json()]})
    return chat


def _service(world: World, state: ChatState, actor: SandboxUser, content: JSON) -> JSON:
    stored = world.store_message(state, actor, content)
    world.deliver(state, stored)
    return copy.deepcopy(stored.data)


def add_member(world: World, chat_id: int, user_id: int, *, admin: bool) -> None:
    """Someone joins a group (or gets promoted); the bot itself can be added or promoted."""
    state = _group(world, chat_id)
    status = members.ADMINISTRATOR if admin else members.MEMBER
    if user_id == world.bot.id:
        _add_bot(world, state, status)
        return
    user = world.user(user_id)
    old = state.members.get(user_id, members.LEFT)
    was_present = old in members.PRESENT
    state.members[user_id] = status
    if not was_present:
        _service(world, state, user, {"new_chat_members": [user.to_json()]})
    _emit_member_change(world, state, user, user, old, status)
    world.activity.notify()


def _add_bot(world: World, state: ChatState, status: str) -> None:
    was_present = state.bot_status in members.PRESENT
    actor = world.group_actor(state)
    world.emit_bot_status(state, actor, status)
    if not was_present:
        _service(world, state, actor, {"new_chat_members": [world.bot.to_json()]})


def remove_member(world: World, chat_id: int, user_id: int, *, kicked: bool = False) -> None:
    """Someone leaves a group (status `left`), or an admin removes them (`kicked`); for the
    bot, a `my_chat_member` update. Admin bots also get a `chat_member` update, as on
    Telegram."""
    state = _group(world, chat_id)
    if user_id == world.bot.id:
        world.emit_bot_status(state, world.group_actor(state), members.LEFT)
        return
    user = world.user(user_id)
    old = state.members.get(user_id, members.LEFT)
    if old in members.PRESENT:
        new = members.KICKED if kicked else members.LEFT
        state.members[user_id] = new
        actor = world.group_actor(state) if kicked else user
        _service(world, state, actor, {"left_chat_member": user.to_json()})
        _emit_member_change(world, state, actor, user, old, new)


def _emit_member_change(
    world: World, state: ChatState, actor: SandboxUser, user: SandboxUser, old: str, new: str
) -> None:
    """Telegram sends `chat_member` updates only to bots that administer the chat."""
    if old != new and world.bot_is_admin(state):
        world.hub.emit("chat_member", members.member_updated(
            state.chat.to_json(), actor, user, old, new, now()))


def edit_text(world: World, user_id: int, chat_id: int | None, message_id: int, text: str) -> JSON:
    """A person edits the text of a message they sent: an `edited_message` update."""
    user = world.user(user_id)
    state = speaking_chat(world, user, chat_id)
    stored = state.live_message(message_id)
    if stored is None or stored.data.get("from", {}).get("id") != user_id:
        raise ValueError(f"user {user_id} sent no message {message_id} in chat {state.id}")
    if "text" not in stored.data:
        raise ValueError(f"message {message_id} has no text to edit")
    stored.data.pop("entities", None)
    stored.data.update(text_content(text))
    stored.data["edit_date"] = now()
    world.activity.notify()
    if (state.chat.type == PRIVATE or state.bot_status in members.PRESENT) and world.bot_sees(
        state, stored
    ):
        world.hub.emit("edited_message", copy.deepcopy(stored.data))
    return copy.deepcopy(stored.data)


def kick_bot(world: World, chat_id: int) -> None:
    """An admin removes the bot from a group (status `kicked`)."""
    state = _group(world, chat_id)
    world.emit_bot_status(state, world.group_actor(state), members.KICKED)


def set_blocked(world: World, user_id: int, blocked: bool) -> None:
    """A user blocks or unblocks the bot (a `my_chat_member` update, as on Telegram)."""
    user = world.user(user_id)
    if blocked == (user_id in world.blocked):
        return
    if blocked:
        world.blocked.add(user_id)
    else:
        world.blocked.discard(user_id)
    state = world.chats.get(user_id)
    if state is not None:
        world.emit_bot_status(state, user, members.KICKED if blocked else members.MEMBER)
    world.activity.notify()


def _group(world: World, chat_id: int) -> ChatState:
    state = world.state(chat_id)
    if state.chat.type == PRIVATE:
        raise ValueError(f"chat {chat_id} is a private chat, not a group")
    if state.migrated_to is not None:
        raise ValueError(f"group {chat_id} was migrated to {state.migrated_to}")
    return state


def speaking_chat(world: World, user: SandboxUser, chat_id: int | None) -> ChatState:
    """The chat a person writes in: their private chat with the bot, or a group they are in."""
    if chat_id is None or chat_id == user.id:
        if user.id in world.blocked:
            set_blocked(world, user.id, False)
        return world.private_state(user)
    state = _group(world, chat_id)
    if state.members.get(user.id) not in members.PRESENT:
        raise ValueError(f"user {user.id} is not a member of chat {chat_id}")
    return state


def post(
    world: World,
    user_id: int,
    chat_id: int | None,
    content: JSON,
    reply_to_message_id: int | None = None,
) -> JSON:
    """Store a person's message and deliver it to the bot; returns the Message JSON."""
    user = world.user(user_id)
    state = speaking_chat(world, user, chat_id)
    reply_to = None
    if reply_to_message_id is not None:
        reply_to = state.live_message(reply_to_message_id)
        if reply_to is None:
            raise ValueError(f"no message {reply_to_message_id} in chat {state.id}")
    stored = world.store_message(state, user, content, reply_to=reply_to)
    world.deliver(state, stored)
    return copy.deepcopy(stored.data)


def text_content(text: str) -> JSON:
    """A text message as a client sends it: commands, links and mentions become entities."""
    if not text.strip():
        raise ValueError("a Telegram message cannot be empty")
    content: JSON = {"text": text}
    entities = detect_entities(text)
    if entities:
        content["entities"] = entities
    return content


def caption_content(caption: str | None) -> JSON:
    """Caption and caption entities of a media message."""
    if not caption:
        return {}
    content: JSON = {"caption": caption}
    entities = detect_entities(caption)
    if entities:
        content["caption_entities"] = entities
    return content


def renditions_of(data: bytes) -> list[Rendition]:
    """Recompress a person's photo (CPU-bound: run it in a worker thread)."""
    try:
        return recompress(data)
    except ApiError as exc:
        raise ValueError(f"not a decodable image ({exc.description})") from exc


def photo_content(
    world: World, renditions: list[Rendition], caption: str | None, group: str | None
) -> JSON:
    """A photo sent "as photo": recompressed renditions without any metadata."""
    content: JSON = {"photo": world.files.add_photo(renditions), **caption_content(caption)}
    if group is not None:
        content["media_group_id"] = group
    return content


def document_content(
    world: World, data: bytes, file_name: str, mime_type: str, caption: str | None
) -> JSON:
    """A file sent "as file": bytes kept exactly (EXIF included)."""
    doc = world.files.add_document(data, file_name, mime_type)
    return {"document": doc, **caption_content(caption)}


def location_content(latitude: float, longitude: float) -> JSON:
    """A shared location."""
    return {"location": {"latitude": latitude, "longitude": longitude}}


def press_button(
    world: World, user_id: int, chat_id: int, message_id: int, data: str, check: bool
) -> str:
    """Emit a `callback_query` for an inline button under a bot message."""
    user = world.user(user_id)
    state = world.state(chat_id)
    stored = state.live_message(message_id)
    if check:
        _check_button(stored, chat_id, message_id, data)
    query = CallbackQuery(
        world.allocate_callback_id(), user_id, chat_id, message_id, data, world.clock()
    )
    world.callbacks[query.id] = query
    if stored is not None:
        message = copy.deepcopy(stored.data)
    else:
        message = {"chat": state.chat.to_json(), "message_id": message_id, "date": 0}
    payload: JSON = {
        "id": query.id,
        "from": user.to_json(),
        "message": message,
        "chat_instance": str(abs(chat_id) * 7 + 1_234_567),
        "data": data,
    }
    world.hub.emit("callback_query", payload)
    return query.id


def _check_button(
    stored: StoredMessage | None, chat_id: int, message_id: int, data: str
) -> None:
    if stored is None or not stored.from_bot:
        raise ValueError(f"no bot message {message_id} in chat {chat_id}")
    rows = (stored.data.get("reply_markup") or {}).get("inline_keyboard", [])
    offered = [button.get("callback_data") for row in rows for button in row]
    if data not in offered:
        raise ValueError(
            f"message {message_id} in chat {chat_id} has no button with callback_data "
            f"{data!r}; it offers {offered!r}"
        )


def migrate(world: World, chat_id: int) -> int:
    """Upgrade a basic group to a supergroup; emits both migration service messages."""
    old = _group(world, chat_id)
    if old.chat.type != GROUP:
        raise ValueError(f"chat {chat_id} is already a supergroup")
    new_id = world.allocate_group_id(supergroup=True)
    chat = SandboxChat(new_id, SUPERGROUP, title=old.chat.title)
    new = ChatState(chat=chat, members=dict(old.members), bot_status=old.bot_status)
    world.chats[new_id] = new
    actor = world.group_actor(old)
    _service(world, old, actor, {"migrate_to_chat_id": new_id})
    old.migrated_to = new_id
    _service(world, new, actor, {"migrate_from_chat_id": chat_id})
    return new_id

