"""Offline Telegram for tests: a recording Bot API request and real ``Update`` builders.

:class:`RecordingRequest` is a :class:`telegram.request.BaseRequest` (like PTB's own
``tests/auxil/networking.py::OfflineRequest``) that answers every Bot API call with a
realistic ``{"ok": true, "result": ...}`` payload and records it. By default it is as
strict as Telegram where a bot can get things wrong: message text over 4,096
characters (after entity parsing), HTML that Telegram would not parse, callback data
over 64 bytes, an edit that changes nothing, and a callback answer over 200
characters are all refused with a 400 and Telegram's own wording, so a handler bug
surfaces as a ``BadRequest`` in the test instead of in production.

:class:`BotHarness` wires it to the real application from ``build_application`` and
plays a user: it builds real :class:`telegram.Update` objects with
:meth:`telegram.Update.de_json` (never mocks), feeds them through
``Application.process_update`` and keeps the chat as a client would see it, so a
test can press a button that is actually on a message the bot sent.
"""

from __future__ import annotations

import html
import itertools
import json
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from telegram import Bot, Update
from telegram._utils.defaultvalue import DEFAULT_NONE
from telegram._utils.types import ODVInput
from telegram.ext import Application
from telegram.request import BaseRequest, RequestData

BOT_ID = 7000001
BOT_USERNAME = "img_guide_test_bot"
BOT_USER = {"id": BOT_ID, "is_bot": True, "first_name": "IMG Guide", "username": BOT_USERNAME}

TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
CALLBACK_DATA_LIMIT = 64
CALLBACK_ANSWER_LIMIT = 200
#: Photos Telegram can process (PNG, JPEG) and its upload limit for a photo.
IMAGE_SIGNATURES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff")
PHOTO_LIMIT = 10 * 1024 * 1024
#: The tags this bot may send (Telegram accepts a few more; the bot uses none of them).
ALLOWED_TAGS = frozenset({"b", "i", "a", "code", "pre"})

_TAG = re.compile(r'<(/?)([a-zA-Z][a-zA-Z0-9-]*)((?:\s+[a-zA-Z-]+="[^"<>]*")*)\s*>')
_ATTR = re.compile(r'([a-zA-Z-]+)="([^"]*)"')
_ENTITY = re.compile(r"&(?:(lt|gt|amp|quot)|#(\d{1,7})|#x([0-9a-fA-F]{1,6}));")


class TelegramRefusal(ValueError):
    """What Telegram would answer with a 400 (the message is its description)."""


def utf16_len(value: str) -> int:
    """Count UTF-16 code units, the way Telegram measures lengths."""
    return len(value.encode("utf-16-le")) // 2


def parse_html(value: str) -> str:
    """Parse Telegram HTML strictly; return the visible text or raise TelegramRefusal."""
    visible: list[str] = []
    stack: list[str] = []
    index = 0
    while index < len(value):
        char = value[index]
        if char == "<":
            match = _TAG.match(value, index)
            if match is None:
                raise TelegramRefusal(
                    f"Bad Request: can't parse entities: unsupported start tag at byte offset "
                    f"{index}"
                )
            closing, name, attrs = match.group(1), match.group(2).lower(), match.group(3)
            if name not in ALLOWED_TAGS:
                raise TelegramRefusal(
                    f'Bad Request: can\'t parse entities: unsupported start tag "{name}" at '
                    f"byte offset {index}"
                )
            if closing:
                if not stack or stack[-1] != name:
                    raise TelegramRefusal(
                        f'Bad Request: can\'t parse entities: can\'t find end tag corresponding '
                        f'to start tag "{stack[-1] if stack else name}"'
                    )
                stack.pop()
            else:
                found = dict(_ATTR.findall(attrs))
                if name == "a":
                    href = html.unescape(found.get("href", ""))
                    if not re.match(r"^(https?://|tg://)\S+$", href):
                        raise TelegramRefusal(
                            f"Bad Request: can't parse entities: bad link href {href!r}"
                        )
                elif found:
                    raise TelegramRefusal(
                        f'Bad Request: can\'t parse entities: unexpected attribute in "{name}"'
                    )
                if name in stack:
                    raise TelegramRefusal(
                        f'Bad Request: can\'t parse entities: "{name}" nested in itself'
                    )
                stack.append(name)
            index = match.end()
        elif char == "&":
            match = _ENTITY.match(value, index)
            if match is None:
                raise TelegramRefusal(
                    "Bad Request: can't parse entities: unsupported HTML entity or bare '&' at "
                    f"byte offset {index}"
                )
            visible.append(html.unescape(match.group(0)))
            index = match.end()
        elif char == ">":
            raise TelegramRefusal(
                f"Bad Request: can't parse entities: unescaped '>' at byte offset {index}"
            )
        else:
            visible.append(char)
            index += 1
    if stack:
        raise TelegramRefusal(
            f'Bad Request: can\'t parse entities: can\'t find end tag corresponding to start '
            f'tag "{stack[-1]}"'
        )
    return "".join(visible)


def visible_text(text: str, parse_mode: str | None) -> str:
    """Return what the user sees of a message text (raise TelegramRefusal if unparsable)."""
    if parse_mode is None:
        return text
    if str(parse_mode).upper() != "HTML":
        raise TelegramRefusal(f"Bad Request: the test fake only knows HTML, not {parse_mode}")
    return parse_html(text)


def check_markup(markup: Any) -> None:
    """Refuse inline keyboards Telegram would refuse."""
    if markup is None:
        return
    if isinstance(markup, str):
        markup = json.loads(markup)
    for row in markup.get("inline_keyboard", []):
        for button in row:
            if not button.get("text"):
                raise TelegramRefusal("Bad Request: text buttons are unallowed in the inline "
                                      "keyboard")
            data = button.get("callback_data")
            if data is not None and not 1 <= len(data.encode("utf-8")) <= CALLBACK_DATA_LIMIT:
                raise TelegramRefusal("Bad Request: BUTTON_DATA_INVALID")


@dataclass(frozen=True)
class Upload:
    """A file the bot uploaded (e.g. with sendDocument)."""

    filename: str
    content: bytes
    mimetype: str


@dataclass(frozen=True)
class Call:
    """One Bot API call the bot made, with its decoded parameters and uploads."""

    method: str
    params: dict[str, Any]
    files: dict[str, Upload] = field(default_factory=dict)
    error: str | None = None
    #: What Telegram answered (for sendMessage: the message, with its message_id).
    result: Any = None

    @property
    def chat_id(self) -> int | None:
        """Return the chat the call addresses, if any."""
        value = self.params.get("chat_id")
        return int(value) if value is not None else None

    @property
    def text(self) -> str:
        """Return the message text (or caption) the call carries."""
        return str(self.params.get("text") or self.params.get("caption") or "")

    @property
    def visible(self) -> str:
        """Return the text as the user sees it (tags removed, entities decoded)."""
        return visible_text(self.text, self.params.get("parse_mode"))

    @property
    def keyboard(self) -> list[list[dict[str, Any]]]:
        """Return the inline keyboard rows (empty when there is none)."""
        markup = self.params.get("reply_markup") or {}
        if isinstance(markup, str):
            markup = json.loads(markup)
        return list(markup.get("inline_keyboard", []))

    @property
    def callback_data(self) -> list[str]:
        """Return every button's callback data, row by row."""
        return [b["callback_data"] for row in self.keyboard for b in row if "callback_data" in b]


def _chat(chat_id: int) -> dict[str, Any]:
    """Describe a chat the way Telegram does (negative ids are groups)."""
    if chat_id > 0:
        return {"id": chat_id, "type": "private", "first_name": "Test"}
    return {"id": chat_id, "type": "supergroup", "title": "IMG study group"}


class RecordingRequest(BaseRequest):
    """Answer every Bot API call offline, like Telegram would, and record it."""

    def __init__(self, *, strict: bool = True) -> None:
        self.strict = strict
        self.calls: list[Call] = []
        #: What each chat shows: (chat_id, message_id) -> the message as Telegram returned it.
        self.messages: dict[tuple[int, int], dict[str, Any]] = {}
        #: Method name -> an error description to answer with once (a 400 unless it says
        #: otherwise), to play Telegram refusing something.
        self.fail_once: dict[str, str] = {}
        #: Chat id -> an error description for every message sent to that chat (a user who
        #: blocked the bot: "Forbidden: bot was blocked by the user").
        self.refuse_chat: dict[int, str] = {}
        #: Method name -> an exception to raise once, as a broken network would.
        self.raise_once: dict[str, Exception] = {}
        self._ids = itertools.count(1000)
        self._answered: set[str] = set()
        #: Files users "uploaded" (file_id -> bytes), served by getFile and the download URL.
        self.files: dict[str, bytes] = {}

    @property
    def read_timeout(self) -> float | None:
        """Return the default read timeout (there is no network to wait for)."""
        return None

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        """Nothing to tear down."""

    # -- reading what happened ----------------------------------------------------------

    def of(self, *methods: str) -> list[Call]:
        """Return the recorded calls of the given methods, in order."""
        return [c for c in self.calls if c.method in methods]

    def sent(self) -> list[Call]:
        """Return the messages sent or edited (texts, edits, documents and photos)."""
        return self.of("sendMessage", "editMessageText", "sendDocument", "sendPhoto")

    def clear(self) -> None:
        """Forget the recorded calls (the chat state is kept)."""
        self.calls.clear()

    # -- the fake Bot API ---------------------------------------------------------------

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: ODVInput[float] = DEFAULT_NONE,
        write_timeout: ODVInput[float] = DEFAULT_NONE,
        connect_timeout: ODVInput[float] = DEFAULT_NONE,
        pool_timeout: ODVInput[float] = DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        """Answer one call."""
        if "/file/bot" in url:  # a file download: the raw bytes, as Telegram serves them
            file_id = url.rsplit("/", 1)[-1]
            self.calls.append(Call("downloadFile", {"file_id": file_id}, {}))
            if file_id not in self.files:
                return 404, b"Not Found"
            return 200, self.files[file_id]
        api_method = url.rsplit("/", 1)[-1]
        params: dict[str, Any] = dict(request_data.parameters) if request_data else {}
        files: dict[str, Upload] = {}
        if request_data is not None and request_data.contains_files:
            for name, (filename, content, mimetype) in request_data.multipart_data.items():
                raw = content if isinstance(content, bytes) else content.read()
                files[name] = Upload(filename or "", raw, mimetype)
        if api_method in self.raise_once:
            self.calls.append(Call(api_method, params, files, error="raised"))
            raise self.raise_once.pop(api_method)
        try:
            if api_method in self.fail_once:
                raise TelegramRefusal(self.fail_once.pop(api_method))
            chat = params.get("chat_id")
            if chat is not None and int(chat) in self.refuse_chat:
                raise TelegramRefusal(self.refuse_chat[int(chat)])
            result = self._answer(api_method, params, files)
        except TelegramRefusal as refusal:
            self.calls.append(Call(api_method, params, files, error=str(refusal)))
            description = str(refusal)
            code = 403 if description.startswith("Forbidden") else 400
            body = {"ok": False, "error_code": code, "description": description}
            return code, json.dumps(body).encode()
        self.calls.append(Call(api_method, params, files, result=result))
        return 200, json.dumps({"ok": True, "result": result}).encode()

    def _message(self, chat_id: int, **fields: Any) -> dict[str, Any]:
        """Create and remember a message the bot sent."""
        message = {
            "message_id": next(self._ids),
            "date": int(time.time()),
            "chat": _chat(chat_id),
            "from": dict(BOT_USER),
            **{k: v for k, v in fields.items() if v is not None},
        }
        self.messages[(chat_id, message["message_id"])] = message
        return message

    def _text(self, params: dict[str, Any], key: str, limit: int) -> str | None:
        """Check a text parameter as Telegram would; return the visible text."""
        raw = params.get(key)
        if raw is None:
            return None
        shown = visible_text(str(raw), params.get("parse_mode")) if self.strict else str(raw)
        if self.strict:
            if key == "text" and not shown.strip():
                raise TelegramRefusal("Bad Request: message text is empty")
            if utf16_len(shown) > limit:
                raise TelegramRefusal(
                    "Bad Request: message is too long" if key == "text"
                    else "Bad Request: message caption is too long"
                )
        return shown

    def _answer(self, api: str, params: dict[str, Any], files: dict[str, Upload]) -> Any:
        """Return the result Telegram would send for a successful call."""
        if self.strict:
            check_markup(params.get("reply_markup"))
        if api == "getMe":
            return {
                **BOT_USER,
                "can_join_groups": True,
                "can_read_all_group_messages": False,
                "supports_inline_queries": False,
            }
        if api == "sendMessage":
            shown = self._text(params, "text", TEXT_LIMIT)
            markup = params.get("reply_markup")
            # Telegram returns inline keyboards with the message; a ForceReply is not shown.
            keep = markup if isinstance(markup, dict) and "inline_keyboard" in markup else None
            return self._message(int(params["chat_id"]), text=shown, reply_markup=keep)
        if api == "editMessageText":
            shown = self._text(params, "text", TEXT_LIMIT)
            key = (int(params["chat_id"]), int(params["message_id"]))
            old = self.messages.get(key)
            markup = params.get("reply_markup")
            if old is None:
                old = {
                    "message_id": key[1],
                    "date": int(time.time()) - 60,
                    "chat": _chat(key[0]),
                    "from": dict(BOT_USER),
                }
            elif self.strict and old.get("text") == shown and old.get("reply_markup") == markup:
                raise TelegramRefusal(
                    "Bad Request: message is not modified: specified new message content and "
                    "reply markup are exactly the same as a current content and reply markup "
                    "of the message"
                )
            new = {**old, "text": shown, "edit_date": int(time.time())}
            new.pop("reply_markup", None)
            if markup is not None:
                new["reply_markup"] = markup
            self.messages[key] = new
            return new
        if api == "sendDocument":
            self._text(params, "caption", CAPTION_LIMIT)
            upload = files.get("document")
            document = {
                "file_id": f"doc-{len(self.calls)}",
                "file_unique_id": f"u{len(self.calls)}",
                "file_name": upload.filename if upload else "file",
                "mime_type": upload.mimetype if upload else "application/octet-stream",
                "file_size": len(upload.content) if upload else 0,
            }
            return self._message(
                int(params["chat_id"]), document=document, caption=params.get("caption")
            )
        if api == "sendPhoto":
            self._text(params, "caption", CAPTION_LIMIT)
            upload = files.get("photo")
            if upload is None:
                raise TelegramRefusal("Bad Request: there is no photo in the request")
            if self.strict and not upload.content.startswith(IMAGE_SIGNATURES):
                raise TelegramRefusal("Bad Request: IMAGE_PROCESS_FAILED")
            if self.strict and len(upload.content) > PHOTO_LIMIT:
                raise TelegramRefusal("Bad Request: PHOTO_SAVE_FILE_INVALID")
            photo = [{
                "file_id": f"photo-{len(self.calls)}",
                "file_unique_id": f"p{len(self.calls)}",
                "width": 1000,
                "height": 800,
                "file_size": len(upload.content),
            }]
            return self._message(
                int(params["chat_id"]), photo=photo, caption=params.get("caption")
            )
        if api == "answerCallbackQuery":
            query_id = str(params.get("callback_query_id"))
            if self.strict and query_id in self._answered:
                raise TelegramRefusal(
                    "Bad Request: query is too old and response timeout expired or query ID is "
                    "invalid"
                )
            self._answered.add(query_id)
            if self.strict and utf16_len(str(params.get("text") or "")) > CALLBACK_ANSWER_LIMIT:
                raise TelegramRefusal("Bad Request: MESSAGE_TOO_LONG")
            return True
        if api == "getUpdates":
            return []
        if api == "getFile":
            file_id = str(params["file_id"])
            if file_id not in self.files:
                raise TelegramRefusal("Bad Request: invalid file_id")
            return {
                "file_id": file_id,
                "file_unique_id": f"u-{file_id}",
                "file_size": len(self.files[file_id]),
                "file_path": f"documents/{file_id}",
            }
        # sendChatAction, setMyCommands, deleteWebhook, ...: Telegram answers true.
        return True


# -- building real updates -------------------------------------------------------------

_update_ids = itertools.count(1)
_message_ids = itertools.count(1)
USER_ID = 111
GROUP_ID = -1001234567890


def user_dict(user_id: int = USER_ID, first_name: str = "Amina") -> dict[str, Any]:
    """Describe a human Telegram user."""
    return {"id": user_id, "is_bot": False, "first_name": first_name, "language_code": "en"}


def _message_dict(
    text: str | None,
    *,
    user_id: int,
    chat_id: int | None,
    entities: Sequence[dict[str, Any]] = (),
    reply_to: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Describe a message a user sent."""
    chat = _chat(chat_id if chat_id is not None else user_id)
    message: dict[str, Any] = {
        "message_id": next(_message_ids),
        "date": int(time.time()),
        "chat": chat,
        "from": user_dict(user_id),
        **extra,
    }
    if text is not None:
        message["text"] = text
    if entities:
        message["entities"] = list(entities)
    if reply_to is not None:
        message["reply_to_message"] = reply_to
    return message


def make_update(bot: Bot, payload: dict[str, Any]) -> Update:
    """Turn an update payload into a real Update bound to ``bot``."""
    update = Update.de_json({"update_id": next(_update_ids), **payload}, bot)
    assert update is not None
    return update


def text_update(
    bot: Bot,
    text: str,
    *,
    user_id: int = USER_ID,
    chat_id: int | None = None,
    entities: Sequence[dict[str, Any]] = (),
    reply_to: dict[str, Any] | None = None,
) -> Update:
    """A text message (in the user's private chat unless ``chat_id`` says otherwise)."""
    message = _message_dict(
        text, user_id=user_id, chat_id=chat_id, entities=entities, reply_to=reply_to
    )
    return make_update(bot, {"message": message})


def command_update(
    bot: Bot, command: str, *, user_id: int = USER_ID, chat_id: int | None = None
) -> Update:
    """A command such as ``/start ecfmg-what-is``, with its bot_command entity."""
    assert command.startswith("/")
    head = command.split(maxsplit=1)[0]
    entity = {"type": "bot_command", "offset": 0, "length": utf16_len(head)}
    return text_update(bot, command, user_id=user_id, chat_id=chat_id, entities=[entity])


def group_update(
    bot: Bot,
    text: str,
    *,
    mention: bool = False,
    reply_to: dict[str, Any] | None = None,
    user_id: int = USER_ID,
    chat_id: int = GROUP_ID,
) -> Update:
    """A group message; ``mention`` prefixes it with ``@bot`` and its mention entity."""
    entities: list[dict[str, Any]] = []
    if mention:
        handle = f"@{BOT_USERNAME}"
        text = f"{handle} {text}"
        entities.append({"type": "mention", "offset": 0, "length": len(handle)})
    return text_update(
        bot, text, user_id=user_id, chat_id=chat_id, entities=entities, reply_to=reply_to
    )


def document_update(
    bot: Bot,
    request: RecordingRequest,
    filename: str,
    content: bytes,
    *,
    user_id: int = USER_ID,
    chat_id: int | None = None,
) -> Update:
    """A file sent to the bot; its bytes are served by ``request`` when the bot fetches it."""
    file_id = f"f{len(request.files) + 1}"
    request.files[file_id] = content
    document = {
        "file_id": file_id, "file_unique_id": f"u-{file_id}", "file_name": filename,
        "mime_type": "application/x-yaml", "file_size": len(content),
    }
    message = _message_dict(None, user_id=user_id, chat_id=chat_id, document=document)
    return make_update(bot, {"message": message})


def photo_update(bot: Bot, *, user_id: int = USER_ID, chat_id: int | None = None) -> Update:
    """A photo without a caption."""
    photo = [
        {"file_id": "p-small", "file_unique_id": "ps", "width": 90, "height": 90,
         "file_size": 1200},
        {"file_id": "p-big", "file_unique_id": "pb", "width": 800, "height": 800,
         "file_size": 64000},
    ]
    message = _message_dict(None, user_id=user_id, chat_id=chat_id, photo=photo)
    return make_update(bot, {"message": message})


def callback_update(
    bot: Bot,
    data: str,
    *,
    message: dict[str, Any] | None = None,
    user_id: int = USER_ID,
) -> Update:
    """A button press on ``message`` (a message the bot sent) carrying ``data``."""
    if message is None:  # an old message the test did not keep
        message = {
            "message_id": 1,
            "date": int(time.time()) - 3600,
            "chat": _chat(user_id),
            "from": dict(BOT_USER),
            "text": "an old message",
        }
    query = {
        "id": f"cq{next(_update_ids)}",
        "from": user_dict(user_id),
        "chat_instance": f"ci{user_id}",
        "message": message,
        "data": data,
    }
    return make_update(bot, {"callback_query": query})


# -- the driver ------------------------------------------------------------------------


class BotHarness:
    """Play a user against the real application, offline."""

    def __init__(self, app: Application, request: RecordingRequest) -> None:  # type: ignore[type-arg]
        self.app = app
        self.request = request

    @property
    def bot(self) -> Bot:
        """Return the application's bot."""
        return self.app.bot

    async def start(self, *, post_init: bool = False) -> BotHarness:
        """Initialise the application (and run its post_init, as run_polling would)."""
        await self.app.initialize()
        if post_init and self.app.post_init is not None:
            await self.app.post_init(self.app)
        return self

    async def stop(self) -> None:
        """Shut the application down the way run_polling does."""
        if self.app.running:
            await self.app.stop()
        await self.app.shutdown()
        if self.app.post_shutdown is not None:
            await self.app.post_shutdown(self.app)

    async def feed(self, update: Update) -> list[Call]:
        """Process one update to the end; return the calls it caused."""
        before = len(self.request.calls)
        await self.app.process_update(update)
        return self.request.calls[before:]

    async def say(self, text: str, **kwargs: Any) -> list[Call]:
        """Send a private text message (a command if it starts with '/')."""
        if text.startswith("/"):
            return await self.feed(command_update(self.bot, text, **kwargs))
        return await self.feed(text_update(self.bot, text, **kwargs))

    def message_with(self, data: str, chat_id: int = USER_ID) -> dict[str, Any]:
        """Return the newest message in the chat that shows a button carrying ``data``."""
        for (chat, _), message in sorted(self.request.messages.items(), reverse=True):
            if chat != chat_id:
                continue
            markup = message.get("reply_markup") or {}
            for row in markup.get("inline_keyboard", []):
                if any(b.get("callback_data") == data for b in row):
                    return message
        shown = [
            [b.get("callback_data") for row in (m.get("reply_markup") or {}).get(
                "inline_keyboard", []) for b in row]
            for (c, _), m in self.request.messages.items() if c == chat_id
        ]
        raise AssertionError(f"no message in chat {chat_id} has a button {data!r}; "
                             f"buttons shown: {shown}")

    async def press(self, data: str, *, user_id: int = USER_ID) -> list[Call]:
        """Press the button carrying ``data`` on the newest message that shows it."""
        message = self.message_with(data, chat_id=user_id)
        return await self.feed(callback_update(self.bot, data, message=message, user_id=user_id))

    async def press_forged(
        self, data: str, *, message: dict[str, Any] | None = None, user_id: int = USER_ID
    ) -> list[Call]:
        """Send callback data no button of the bot carries (forged or from an old version)."""
        return await self.feed(callback_update(self.bot, data, message=message, user_id=user_id))


def replies(calls: Iterable[Call]) -> list[Call]:
    """Keep the calls that show the user something (messages, edits, documents, photos)."""
    return [c for c in calls
            if c.method in ("sendMessage", "editMessageText", "sendDocument", "sendPhoto")
            and c.error is None]
