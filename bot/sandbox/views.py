"""JSON views of the sandbox for the control API and the web chat page."""

from __future__ import annotations

from . import members
from .models import JSON, PRIVATE, ChatState, StoredMessage
from .world import World

ACTION_SECONDS = 5.0


def user_view(world: World, user_id: int) -> JSON:
    """A user with what the page needs beyond the Telegram `User` object."""
    user = world.users[user_id]
    data = user.to_json()
    data.update(
        full_name=user.full_name,
        phone_number=user.phone_number,
        blocked=user_id in world.blocked,
        started=user_id in world.chats,
    )
    return data


def chat_view(world: World, state: ChatState) -> JSON:
    """A chat summary for the chat list."""
    live = [m for m in state.messages.values() if not m.deleted]
    return {
        **state.chat.to_json(),
        "name": chat_name(world, state),
        "members": {str(uid): status for uid, status in state.members.items()},
        "bot_status": state.bot_status,
        "migrated_to": state.migrated_to,
        "message_count": len(state.messages),
        "last": summary(live[-1]) if live else "",
    }


def chat_name(world: World, state: ChatState) -> str:
    """What a client shows as the chat's name."""
    if state.chat.type == PRIVATE:
        return world.users[state.id].full_name
    return state.chat.title or str(state.id)


def summary(stored: StoredMessage) -> str:
    """A one-line preview of a message."""
    data = stored.data
    for key in ("text", "caption"):
        if data.get(key):
            return str(data[key])[:80]
    labels = {
        "photo": "🖼 Photo",
        "document": "📎 File",
        "location": "📍 Location",
        "new_chat_members": "➕ joined",
        "left_chat_member": "➖ left",
        "migrate_to_chat_id": "⬆ upgraded",
        "migrate_from_chat_id": "⬆ upgraded",
    }
    for key, label in labels.items():
        if key in data:
            return label
    return "…"


def private_stub(world: World, user_id: int) -> JSON:
    """The chat-list entry of a user who has not written to the bot yet."""
    user = world.users[user_id]
    return {
        "id": user_id,
        "type": PRIVATE,
        "first_name": user.first_name,
        "name": user.full_name,
        "members": {str(user_id): members.MEMBER},
        "bot_status": members.MEMBER,
        "migrated_to": None,
        "message_count": 0,
        "last": "",
    }


def state_view(world: World, bot: JSON) -> JSON:
    """Everything the page's side panels need, with the change counter."""
    people = [u for u in world.users.values() if not u.is_bot]
    chats = [
        chat_view(world, world.chats[u.id]) if u.id in world.chats else private_stub(world, u.id)
        for u in people
    ]
    chats += [chat_view(world, s) for s in world.chats.values() if s.chat.type != PRIVATE]
    return {
        "version": world.activity.version,
        "bot": bot,
        "users": [user_view(world, u.id) for u in people],
        "chats": chats,
    }


def empty_transcript(world: World, user_id: int) -> JSON:
    """The transcript of a private chat that does not exist yet."""
    return {
        "version": world.activity.version,
        "chat": private_stub(world, user_id),
        "messages": [],
        "reply_keyboard": None,
        "action": None,
        "answers": [],
        "bot_present": True,
    }


def transcript_view(world: World, state: ChatState) -> JSON:
    """The messages of a chat with the extras the page shows (keyboards, answers, typing)."""
    messages: list[JSON] = []
    for stored in state.messages.values():
        view = world.message_view(stored)
        if stored.markup is not None:
            view["_markup"] = stored.markup
        messages.append(view)
    acting = world.clock() - state.last_action_at < ACTION_SECONDS
    answers = [
        {"id": q.id, "message_id": q.message_id, "user_id": q.user_id, "data": q.data,
         "answer": q.answer}
        for q in world.callbacks.values()
        if q.chat_id == state.id and q.answer is not None
    ]
    return {
        "version": world.activity.version,
        "chat": chat_view(world, state),
        "messages": messages,
        "reply_keyboard": state.reply_keyboard,
        "action": state.last_action if acting else None,
        "answers": answers,
        "bot_present": state.bot_status in members.PRESENT,
    }
