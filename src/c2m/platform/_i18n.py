"""A small message catalogue: Simplified Chinese and English."""

from __future__ import annotations

from collections.abc import Callable

from ._admin_i18n import ADMIN_MESSAGES
from ._person_i18n import PERSON_MESSAGES

LANGS = ("zh", "en")
HTML_LANG = {"zh": "zh-CN", "en": "en"}

MESSAGES: dict[str, dict[str, str]] = {
    "title": {"en": "Book a test drive", "zh": "预约试驾"},
    "step_city": {"en": "1. Choose your city", "zh": "1. 选择城市"},
    "step_store": {"en": "2. Choose a store", "zh": "2. 选择门店"},
    "step_day": {"en": "3. Choose a day", "zh": "3. 选择日期"},
    "step_slot": {"en": "4. Choose a time", "zh": "4. 选择时间"},
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
    "benefit_intro": {
        "en": "The first applicants get these benefits when they buy. One benefit per person.",
        "zh": "前若干名申请者购车时可享受以下权益，每人限领一项。",
    },
    "benefit_apply": {"en": "Apply", "zh": "申请"},
    "benefit_sign_in": {"en": "Sign in to apply", "zh": "登录后申请"},
    "benefit_yours": {"en": "Your benefit", "zh": "您已获得的权益"},
    "benefit_exhausted": {"en": "All of this benefit have been given out.", "zh": "该权益已全部领完。"},
    "benefit_already": {
        "en": "You already have an early-purchase benefit; it is one per person.",
        "zh": "您已领取过早鸟权益，每人限领一项。",
    },
    "benefit_next": {"en": "Pre-order your car", "zh": "预订您的车"},
    "benefit_link": {"en": "Apply for an early-purchase benefit", "zh": "申请早鸟购车权益"},
    # ---------------------------------------------------------------- survey
    "survey_title": {"en": "Help us design your next car", "zh": "参与调研，共创您的下一台车"},
    "survey_intro": {
        "en": "A few questions, then {n} short choices between cars. It takes about 5 minutes.",
        "zh": "先回答几个问题，然后在几款车之间做 {n} 次简单选择，约需 5 分钟。",
    },
    "screen_legend": {"en": "About you", "zh": "关于您"},
    "screen_adult": {"en": "Are you 18 or older?", "zh": "您是否年满 18 岁？"},
    "screen_buy": {
        "en": "Do you plan to buy a car within the next 24 months?",
        "zh": "您是否计划在未来 24 个月内购车？",
    },
    "yes": {"en": "Yes", "zh": "是"},
    "no": {"en": "No", "zh": "否"},
    "start": {"en": "Start the survey", "zh": "开始调研"},
    "screened_out": {
        "en": "Thank you for your interest. This survey is for adults planning to buy a car soon.",
        "zh": "感谢您的关注。本次调研面向近期有购车计划的成年人。",
    },
    "task_heading": {"en": "Choice {k} of {n}", "zh": "第 {k} / {n} 题"},
    "task_question": {
        "en": "If these were the only cars on offer, which would you buy?",
        "zh": "如果只有以下几款车可选，您会购买哪一款？",
    },
    "progress": {"en": "Survey progress", "zh": "调研进度"},
    "option": {"en": "Option {k}", "zh": "方案 {k}"},
    "profile_legend": {"en": "Last, a few questions about you", "zh": "最后，关于您的几个问题"},
    "profile_city": {"en": "City you live in", "zh": "您所在的城市"},
    "city_other": {"en": "Another city", "zh": "其他城市"},
    "profile_daily_km": {"en": "Kilometres you drive on a typical day", "zh": "您平均每天驾驶的公里数"},
    "profile_home_charging": {"en": "Can you charge a car at home?", "zh": "您家中能否安装充电桩？"},
    "charging_yes": {"en": "Yes, I have or can install a charger", "zh": "能，已有或可以安装充电桩"},
    "charging_no": {"en": "No", "zh": "不能"},
    "charging_unsure": {"en": "Not sure", "zh": "不确定"},
    "profile_current_car": {"en": "The car you drive now", "zh": "您目前驾驶的车"},
    "car_none": {"en": "I have no car", "zh": "目前没有车"},
    "car_petrol": {"en": "Petrol or diesel", "zh": "燃油车"},
    "car_hybrid": {"en": "Hybrid or plug-in hybrid", "zh": "混动或插电混动"},
    "car_electric": {"en": "Battery electric", "zh": "纯电动车"},
    "finish": {"en": "Finish", "zh": "完成"},
    "thanks": {"en": "Thank you!", "zh": "感谢您的参与！"},
    "thanks_text": {
        "en": "Your answers are saved. They help us build the car people want.",
        "zh": "您的回答已保存，它将帮助我们打造大家真正想要的车。",
    },
    "err_choice": {"en": "Please choose one of the options.", "zh": "请选择其中一个选项。"},
    "err_screening": {"en": "Please answer both questions.", "zh": "请回答以上两个问题。"},
    "err_city": {"en": "Please choose your city.", "zh": "请选择您所在的城市。"},
    "err_daily_km": {
        "en": "Please enter a whole number of kilometres from 0 to 1500.",
        "zh": "请输入 0 到 1500 之间的整数公里数。",
    },
    "err_home_charging": {"en": "Please say whether you can charge at home.", "zh": "请选择能否在家充电。"},
    "err_current_car": {"en": "Please choose the car you drive now.", "zh": "请选择您目前驾驶的车。"},
    "survey_privacy": {
        "en": "Your answers are stored anonymously, for product research only.",
        "zh": "您的回答将匿名保存，仅用于产品研究。",
    },
    "privacy": {
        "en": "We keep only a one-way hash of your contact to recognise your booking.",
        "zh": "我们只保存您联系方式的单向哈希值，用于识别您的预约。",
    },
    # ---------------------------------------------------------------- pre-orders
    "preorder_title": {"en": "Pre-order your car", "zh": "预订您的爱车"},
    "preorder_intro": {
        "en": "Choose your car and pay a refundable deposit of {deposit}. You can cancel any time before delivery.",
        "zh": "选择您的配置并支付 {deposit} 可退定金，交付前可随时取消。",
    },
    "preorder_step_options": {"en": "1. Choose your car", "zh": "1. 选择配置"},
    "variant": {"en": "Version and price", "zh": "版本与价格"},
    "colour": {"en": "Colour", "zh": "颜色"},
    "battery": {"en": "Battery", "zh": "电池"},
    "plan": {"en": "Buy or rent the battery", "zh": "电池购买或租用"},
    "plan_buy": {"en": "Buy the battery with the car", "zh": "电池随车购买"},
    "plan_rent": {"en": "Rent the battery: {plan}, {fee}/month", "zh": "租用电池：{plan}，每月 {fee}"},
    "preorder_submit": {"en": "Reserve and continue to payment", "zh": "提交预订并去支付"},
    "order_ref": {"en": "Pre-order reference", "zh": "预订编号"},
    "order_state": {"en": "Status", "zh": "状态"},
    "price": {"en": "Price", "zh": "价格"},
    "deposit": {"en": "Refundable deposit", "zh": "可退定金"},
    "monthly_fee": {"en": "Battery rent", "zh": "电池租金"},
    "per_month": {"en": "{fee}/month", "zh": "每月 {fee}"},
    "money": {"en": "{amount} yuan", "zh": "{amount} 元"},
    "pay_heading": {"en": "Pay the deposit", "zh": "支付定金"},
    "pay_text": {
        "en": "Your car is reserved. Pay the refundable deposit of {deposit} to secure it.",
        "zh": "您的配置已保留，支付 {deposit} 可退定金即可锁定订单。",
    },
    "pay": {"en": "Pay the deposit of {deposit}", "zh": "支付定金 {deposit}"},
    "preorder_confirmed": {"en": "Your pre-order is confirmed", "zh": "预订成功"},
    "preorder_confirmed_text": {
        "en": "We received your deposit of {deposit}. We will contact you before delivery.",
        "zh": "已收到您的定金 {deposit}，交付前我们会与您联系。",
    },
    "preorder_delivered": {"en": "Your car has been delivered", "zh": "您的爱车已交付"},
    "preorder_cancelled": {"en": "This pre-order is cancelled", "zh": "该预订已取消"},
    "preorder_refunded": {
        "en": "This pre-order is cancelled and your deposit of {deposit} refunded",
        "zh": "该预订已取消，定金 {deposit} 已退回",
    },
    "preorder_cancel": {"en": "Cancel the pre-order", "zh": "取消预订"},
    "preorder_again": {"en": "Start a new pre-order", "zh": "重新预订"},
    "state_reserved": {"en": "reserved, deposit not paid", "zh": "已保留，待付定金"},
    "state_deposit_paid": {"en": "deposit paid", "zh": "已付定金"},
    "state_confirmed": {"en": "confirmed for production", "zh": "已确认排产"},
    "state_delivered": {"en": "delivered", "zh": "已交付"},
    "state_cancelled": {"en": "cancelled", "zh": "已取消"},
    "state_refunded": {"en": "cancelled, deposit refunded", "zh": "已取消，定金已退"},
    "payment_failed": {
        "en": "The payment did not go through: {message} Nothing was charged; you can try again.",
        "zh": "支付未成功：{message} 未扣除任何费用，您可以重试。",
    },
}


MESSAGES |= ADMIN_MESSAGES
MESSAGES |= PERSON_MESSAGES


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


# Chinese labels of the default project's attributes, levels and cities (the project file's labels are English).
ATTRIBUTE_ZH: dict[str, str] = {
    "style": "外观风格",
    "colour": "车身颜色",
    "smart_pack": "智能配置包",
    "battery": "电池包",
    "energy_mode": "补能方式",
    "sunroof": "天窗",
    "ownership": "电池购买方式",
    "price": "购车价格（元）",
}
LEVEL_ZH: dict[tuple[str, str], str] = {
    ("style", "classic"): "经典圆润",
    ("style", "sporty"): "运动",
    ("style", "retro"): "复古方正",
    ("colour", "white"): "珍珠白",
    ("colour", "black"): "石墨黑",
    ("colour", "grey"): "水泥灰",
    ("colour", "blue"): "天空蓝",
    ("colour", "green"): "薄荷绿",
    ("colour", "pink"): "樱花粉",
    ("colour", "orange"): "日落橙",
    ("smart_pack", "basic"): "基础版：手机互联",
    ("smart_pack", "plus"): "进阶版：语音助手、车道保持、360 全景影像",
    ("smart_pack", "max"): "旗舰版：进阶版功能加自动泊车和城市导航辅助",
    ("battery", "lfp42"): "20# 磷酸铁锂 42 kWh，约 400 公里",
    ("battery", "ncm52"): "20# 三元锂 52 kWh，约 500 公里",
    ("battery", "lfp56"): "25# 磷酸铁锂 56 kWh，约 500 公里",
    ("battery", "ncm70"): "25# 三元锂 70 kWh，约 600 公里",
    ("energy_mode", "plugin"): "仅插电充电",
    ("energy_mode", "swap"): "仅换电",
    ("energy_mode", "both"): "可换电也可插电充电",
    ("sunroof", "no"): "无天窗",
    ("sunroof", "yes"): "全景天窗",
    ("ownership", "buy"): "电池随车购买",
    ("ownership", "rent_capped"): "租用电池，每月含 3,000 公里",
    ("ownership", "rent_unlimited"): "租用电池，不限里程",
}
NONE_ZH = "以上都不选：我不会购买"
CITY_ZH: dict[str, str] = {
    "Shanghai": "上海", "Beijing": "北京", "Shenzhen": "深圳", "Guangzhou": "广州", "Chengdu": "成都",
    "Hangzhou": "杭州", "Chongqing": "重庆", "Wuhan": "武汉", "Xi'an": "西安", "Tianjin": "天津", "Suzhou": "苏州",
    "Nanjing": "南京", "Zhengzhou": "郑州", "Changsha": "长沙", "Dongguan": "东莞", "Qingdao": "青岛", "Hefei": "合肥",
    "Foshan": "佛山", "Ningbo": "宁波", "Kunming": "昆明", "Shenyang": "沈阳", "Jinan": "济南", "Xiamen": "厦门",
    "Fuzhou": "福州", "Wuxi": "无锡", "Nanning": "南宁", "Nanchang": "南昌", "Shijiazhuang": "石家庄",
    "Harbin": "哈尔滨", "Changchun": "长春", "Taiyuan": "太原", "Guiyang": "贵阳", "Lanzhou": "兰州", "Haikou": "海口",
}
