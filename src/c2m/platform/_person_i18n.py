"""Messages of the consumer's own pages: sign-in, after-sales service, my data (Simplified Chinese and English)."""

from __future__ import annotations

PERSON_MESSAGES: dict[str, dict[str, str]] = {
    # ---------------------------------------------------------------- sign-in
    "account": {"en": "Your account", "zh": "我的账户"},
    "sign_in": {"en": "Sign in", "zh": "登录"},
    "sign_out": {"en": "Sign out", "zh": "退出登录"},
    "sign_in_title": {"en": "Sign in with a one-time code", "zh": "验证码登录"},
    "sign_in_intro": {
        "en": "Enter your mobile number or e-mail. We send you a 6-digit code; no password needed.",
        "zh": "请输入手机号或电子邮箱，我们会发送 6 位验证码，无需密码。",
    },
    "send_code": {"en": "Send me a code", "zh": "获取验证码"},
    "code_sent": {
        "en": "We sent a 6-digit code to {contact}. It is valid for {minutes} minutes.",
        "zh": "验证码已发送至 {contact}，{minutes} 分钟内有效。",
    },
    "code": {"en": "6-digit code", "zh": "6 位验证码"},
    "verify": {"en": "Sign in", "zh": "登录"},
    "new_code": {"en": "Send a new code", "zh": "重新发送验证码"},
    "other_contact": {"en": "Use another mobile number or e-mail", "zh": "使用其他手机号或邮箱"},
    "sign_in_to_book": {"en": "Sign in to book", "zh": "登录后预约"},
    "signed_in": {"en": "You are signed in.", "zh": "您已登录。"},
    "identity_privacy": {
        "en": "We keep only a one-way hash of your contact, never the contact itself.",
        "zh": "我们只保存您联系方式的单向哈希值，不保存联系方式本身。",
    },
    # ---------------------------------------------------------------- after-sales
    "service_title": {"en": "Book a service appointment", "zh": "预约售后服务"},
    "service_kind": {"en": "Service", "zh": "服务项目"},
    "kind_maintenance": {"en": "Maintenance", "zh": "常规保养"},
    "kind_battery_service": {"en": "Battery service", "zh": "电池检测与保养"},
    "service_step_kind": {"en": "1. Choose the service", "zh": "1. 选择服务项目"},
    "service_step_city": {"en": "2. Choose your city", "zh": "2. 选择城市"},
    "service_step_store": {"en": "3. Choose a store", "zh": "3. 选择门店"},
    "service_step_day": {"en": "4. Choose a day", "zh": "4. 选择日期"},
    "service_step_slot": {"en": "5. Choose a time", "zh": "5. 选择时间"},
    "service_car": {"en": "Your car (optional)", "zh": "您的车辆（可选）"},
    "service_no_car": {"en": "Not linked to a pre-order", "zh": "不关联订单"},
    "service_book": {"en": "Book the appointment", "zh": "确认预约"},
    "service_move": {"en": "Move the appointment here", "zh": "改约到此时段"},
    "bays_left": {"en": "{n} bays left", "zh": "剩余 {n} 个工位"},
    "service_confirmed": {"en": "Your service appointment is booked", "zh": "售后服务预约成功"},
    "service_cancelled": {"en": "This service appointment is cancelled", "zh": "该售后服务预约已取消"},
    "appointment_ref": {"en": "Appointment reference", "zh": "预约编号"},
    "service_cancel": {"en": "Cancel the appointment", "zh": "取消预约"},
    "service_rebook": {"en": "Change the time", "zh": "修改时间"},
    "service_again": {"en": "Book another service", "zh": "预约其他服务"},
    "car_ref": {"en": "Car (pre-order)", "zh": "车辆（订单）"},
    # ---------------------------------------------------------------- my data
    "my_data": {"en": "My data", "zh": "我的数据"},
    "my_data_intro": {
        "en": "Everything we keep about you. We know you only by a one-way hash of your contact.",
        "zh": "以下是我们保存的与您相关的全部数据。我们只通过您联系方式的单向哈希值识别您。",
    },
    "my_bookings": {"en": "Test drives", "zh": "试驾预约"},
    "my_claims": {"en": "Early-purchase benefits", "zh": "早鸟权益"},
    "my_preorders": {"en": "Pre-orders", "zh": "预订"},
    "my_appointments": {"en": "Service appointments", "zh": "售后服务预约"},
    "my_sessions": {"en": "Signed-in sessions", "zh": "登录会话"},
    "nothing": {"en": "None.", "zh": "无。"},
    "status_booked": {"en": "booked", "zh": "已预约"},
    "status_cancelled": {"en": "cancelled", "zh": "已取消"},
    "expires": {"en": "until {at}", "zh": "有效期至 {at}"},
    "download": {"en": "Download my data (JSON)", "zh": "下载我的数据（JSON）"},
    "delete_heading": {"en": "Delete my data", "zh": "删除我的数据"},
    "delete_text": {
        "en": "This cancels your test drives, service appointments and undelivered pre-orders (paid deposits are "
              "refunded), signs you out everywhere, and removes every link between you and our records.",
        "zh": "此操作将取消您的试驾预约、售后服务预约和未交付的预订（已付定金将退回），退出所有登录，"
              "并删除您与我们所有记录之间的关联。",
    },
    "delete_confirm": {"en": "I understand; delete my data", "zh": "我已了解，删除我的数据"},
    "delete_button": {"en": "Delete my data", "zh": "删除我的数据"},
    "err_delete_confirm": {"en": "Please tick the box to confirm.", "zh": "请勾选以确认。"},
    "deleted_heading": {"en": "Your data is deleted", "zh": "您的数据已删除"},
    "deleted_text": {
        "en": "Cancelled: {bookings} test drives, {appointments} service appointments, {preorders} pre-orders. "
              "{records} records no longer link to you, and you are signed out.",
        "zh": "已取消：{bookings} 个试驾预约、{appointments} 个售后服务预约、{preorders} 个预订。"
              "{records} 条记录已不再与您关联，您已退出登录。",
    },
}
