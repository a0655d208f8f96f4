"""A small message catalogue: Simplified Chinese and English."""

from __future__ import annotations

from collections.abc import Callable

LANGS = ("zh", "en")
HTML_LANG = {"zh": "zh-CN", "en": "en"}

MESSAGES: dict[str, dict[str, str]] = {
    "title": {"en": "Book a test drive", "zh": "预约试驾"},
    "step_city": {"en": "1. Choose your city", "zh": "1. 选择城市"},
    "step_store": {"en": "2. Choose a store", "zh": "2. 选择门店"},
    "step_day": {"en": "3. Choose a day", "zh": "3. 选择日期"},
    "step_slot": {"en": "4. Choose a time and leave your contact", "zh": "4. 选择时间并留下联系方式"},
    "city": {"en": "City", "zh": "城市"},
    "store": {"en": "Store", "zh": "门店"},
    "day": {"en": "Day", "zh": "日期"},
    "time": {"en": "Time", "zh": "时间"},
    "contact": {"en": "Mobile number or e-mail", "zh": "手机号或电子邮箱"},
    "next": {"en": "Next", "zh": "下一步"},
    "book": {"en": "Book the test drive", "zh": "确认预约"},
    "seats_left": {"en": "{n} seats left", "zh": "剩余 {n} 个名额"},
    "full": {"en": "full", "zh": "已满"},
    "own_store": {"en": "retailer's store", "zh": "自营门店"},
    "partner_store": {"en": "partner outlet", "zh": "合作门店"},
    "no_slots": {"en": "No free slots in the coming days.", "zh": "近期没有可预约的时段。"},
    "confirmed": {"en": "Your test drive is booked", "zh": "试驾预约成功"},
    "cancelled": {"en": "This booking is cancelled", "zh": "该预约已取消"},
    "booking_ref": {"en": "Booking reference", "zh": "预约编号"},
    "cancel": {"en": "Cancel the booking", "zh": "取消预约"},
    "book_again": {"en": "Book another test drive", "zh": "重新预约试驾"},
    "change": {"en": "change", "zh": "修改"},
    "language": {"en": "中文", "zh": "English"},
    "error": {"en": "Sorry", "zh": "抱歉"},
    "benefits": {"en": "Early-purchase benefits", "zh": "早鸟购车权益"},
    "remaining": {"en": "{n} of {quota} left", "zh": "剩余 {n} / {quota}"},
    "privacy": {
        "en": "We keep only a one-way hash of your contact to recognise your booking.",
        "zh": "我们只保存您联系方式的单向哈希值，用于识别您的预约。",
    },
}


def pick_lang(query: str | None, accept_language: str | None, default: str = "zh") -> str:
    """``?lang=`` if valid, else the first of zh/en in Accept-Language, else ``default``."""
    if query in LANGS:
        return query
    for part in (accept_language or "").split(","):
        tag = part.split(";")[0].strip().lower()
        if tag.startswith("zh"):
            return "zh"
        if tag.startswith("en"):
            return "en"
    return default


def translator(lang: str) -> Callable[..., str]:
    """``t(key, **values)`` for ``lang`` (English when a key lacks the language)."""

    def t(key: str, **values: object) -> str:
        entry = MESSAGES[key]
        return entry.get(lang, entry["en"]).format(**values)

    return t
