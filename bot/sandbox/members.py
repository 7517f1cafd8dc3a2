"""`ChatMember` objects: what `getChatMember` answers and `my_chat_member` updates carry."""

from __future__ import annotations

from .models import JSON, SandboxUser

MEMBER = "member"
ADMINISTRATOR = "administrator"
CREATOR = "creator"
LEFT = "left"
KICKED = "kicked"
PRESENT = frozenset({MEMBER, ADMINISTRATOR, CREATOR})

_ADMIN_RIGHTS = {
    "can_be_edited": False,
    "is_anonymous": False,
    "can_manage_chat": True,
    "can_delete_messages": True,
    "can_manage_video_chats": True,
    "can_restrict_members": True,
    "can_promote_members": False,
    "can_change_info": True,
    "can_invite_users": True,
    "can_post_stories": False,
    "can_edit_stories": False,
    "can_delete_stories": False,
    "can_pin_messages": True,
    "can_manage_topics": False,
}


def member_json(user: SandboxUser, status: str) -> JSON:
    """The `ChatMember` object of `user` with that status."""
    data: JSON = {"user": user.to_json(), "status": status}
    if status == ADMINISTRATOR:
        data.update(_ADMIN_RIGHTS)
    elif status == CREATOR:
        data["is_anonymous"] = False
    elif status == KICKED:
        data["until_date"] = 0
    return data


def my_chat_member(
    chat: JSON, actor: SandboxUser, bot: SandboxUser, old: str, new: str, date: int
) -> JSON:
    """The payload of a `my_chat_member` update: the bot's status changed from old to new."""
    return member_updated(chat, actor, bot, old, new, date)


def member_updated(
    chat: JSON, actor: SandboxUser, subject: SandboxUser, old: str, new: str, date: int
) -> JSON:
    """A `ChatMemberUpdated`: `subject`'s status changed from old to new (the payload of
    `my_chat_member` for the bot, of `chat_member` for anyone else)."""
    return {
        "chat": chat,
        "from": actor.to_json(),
        "date": date,
        "old_chat_member": member_json(subject, old),
        "new_chat_member": member_json(subject, new),
    }
