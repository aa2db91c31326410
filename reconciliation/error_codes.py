"""Error and warning codes of uploaded files: each code's zh-Hant message
and "how to fix" hint (translatable, English from the .po file).

Codes are stable snake_case strings; pages, reports and the API show
``describe(code)``, never the code itself.
"""

from django.utils.translation import gettext_lazy

from reconciliation import schema

# code → (message, how to fix). Messages take %(name)s parameters.
ERRORS: dict[str, tuple] = {
    # file level
    "missing_column": (
        gettext_lazy("缺少必填欄位 %(column)s（%(label)s）。"),
        gettext_lazy(
            "在標題列加上 %(column)s 欄（也可用中文「%(label)s」），或下載範本照欄位貼上。"
        ),
    ),
    "duplicate_column": (
        gettext_lazy("欄位 %(column)s 出現 %(count)s 次：%(headers)s。"),
        gettext_lazy("只保留一欄 %(column)s，刪除或改名其他重複的欄位。"),
    ),
    "empty_file": (
        gettext_lazy("檔案是空的。"),
        gettext_lazy("重新從後台匯出訂單付款資料，確認檔案有內容再上傳。"),
    ),
    "header_only": (
        gettext_lazy("只有標題列，沒有任何訂單資料。"),
        gettext_lazy("確認匯出時有選到 2026-05-12 到 2026-05-21 的訂單，再重新匯出。"),
    ),
    "unreadable_file": (
        gettext_lazy("檔案無法讀取（%(reason)s）。"),
        gettext_lazy("用 Excel 開啟後另存為 .xlsx 或「CSV UTF-8」再上傳。"),
    ),
    "unsupported_type": (
        gettext_lazy("不支援的檔案類型（%(kind)s），只收 CSV 或 XLSX。"),
        gettext_lazy("從後台匯出 CSV 或 XLSX；不要上傳 PDF、圖片或壓縮檔。"),
    ),
    "too_large": (
        gettext_lazy("檔案 %(size_mb)s MB，超過上限 %(limit_mb)s MB。"),
        gettext_lazy("把期間分成幾段分別匯出，或改存成 CSV（通常小很多）再上傳。"),
    ),
    "too_many_rows": (
        gettext_lazy("資料有 %(rows)s 列，超過上限 %(limit)s 列。"),
        gettext_lazy("把期間拆成兩個檔案分別上傳。"),
    ),
    "encrypted_xlsx": (
        gettext_lazy("這是加密或舊版（.xls）的 Excel 檔，系統無法讀取。"),
        gettext_lazy("在 Excel 移除密碼保護（檔案 → 資訊 → 保護活頁簿），另存為 .xlsx 再上傳。"),
    ),
    "zip_bomb": (
        gettext_lazy("XLSX 解壓縮後的大小異常（%(detail)s），為了安全拒收。"),
        gettext_lazy("用 Excel 開啟後另存新檔，或改存成 CSV 再上傳。"),
    ),
    "sheet_too_large": (
        gettext_lazy("工作表的範圍大得異常（%(detail)s），為了安全拒收。"),
        gettext_lazy(
            "多半是遠處有一格內容或格式（例如最後一列、最後一欄）。只複製有資料的範圍貼到新活頁簿，或改存成 CSV 再上傳。"
        ),
    ),
    # row level
    "wrong_field_count": (
        gettext_lazy("這一列有 %(actual)s 個欄位，標題列有 %(expected)s 個。"),
        gettext_lazy("多半是內容裡有未加引號的逗號；用 Excel 另存為 CSV 會自動加上引號。"),
    ),
    "blank_order_id": (
        gettext_lazy("order_id 空白。"),
        gettext_lazy("每一列都要有平台訂單編號；整列空白請直接刪除。"),
    ),
    "blank_value": (
        gettext_lazy("%(column)s 不可空白。"),
        gettext_lazy("%(help)s"),
    ),
    "too_long": (
        gettext_lazy("%(column)s 超過 %(limit)s 個字。"),
        gettext_lazy("確認這一欄沒有貼錯內容（例如整段備註貼進代碼欄）。"),
    ),
    "bad_date": (
        gettext_lazy("created_at「%(value)s」不是可辨識的日期時間。"),
        gettext_lazy(
            "請用 2026-05-12 20:15 或 2026/05/12 20:15 的格式（台北時間），Excel 的日期儲存格也可以。"
        ),
    ),
    "bad_amount": (
        gettext_lazy("amount「%(value)s」不是數字。"),
        gettext_lazy("只填數字，例如 28000；不要加幣別、文字或公式。"),
    ),
    "amount_too_large": (
        gettext_lazy("%(column)s「%(value)s」超過系統能存的金額上限 %(limit)s。"),
        gettext_lazy("確認單位是元（不是分）、沒有多打位數；真的有這麼大的金額請先和 Louis 確認。"),
    ),
    "negative_amount": (
        gettext_lazy("amount %(value)s 是負數。"),
        gettext_lazy("退款請把 payment_status 填 refunded，amount 填原訂單金額（正數）。"),
    ),
    "unknown_payment_status": (
        gettext_lazy("payment_status「%(value)s」不是 paid / pending / refunded。"),
        gettext_lazy("改成 paid、pending 或 refunded（也可填 已付款、待付款、已退款）。"),
    ),
    "nul_character": (
        gettext_lazy("%(column)s 含有 NUL 控制字元（\\0）。"),
        gettext_lazy(
            "多半是匯出程式或複製貼上帶進的隱藏字元；刪掉那一格重新輸入，或用 Excel 開啟後另存為「CSV UTF-8」。"
        ),
    ),
    "bad_settlement_date": (
        gettext_lazy("%(column)s「%(value)s」不是可辨識的日期。"),
        gettext_lazy("請用 2026-05-12、20260512 或 2026/05/12 20:15:00 的格式（台北時間）。"),
    ),
    "bad_settlement_amount": (
        gettext_lazy("%(column)s「%(value)s」不是數字。"),
        gettext_lazy("只填數字，例如 28000 或退款 -28000；不要加文字或公式。"),
    ),
    "unknown_txn_type": (
        gettext_lazy("txn_type「%(value)s」不是 charge / refund / chargeback / fee / adjustment。"),
        gettext_lazy("改成 charge、refund、chargeback、fee 或 adjustment，或留白依金額正負判斷。"),
    ),
    "unknown_settlement_status": (
        gettext_lazy("settlement_status「%(value)s」不是 settled / unsettled / on_hold。"),
        gettext_lazy("改成 settled、unsettled 或 on_hold（也可填 已撥款、未撥款、暫停撥款）。"),
    ),
    "card_number": (
        gettext_lazy("%(column)s 含有信用卡號 %(value)s。"),
        gettext_lazy(
            "刪除卡號再上傳；付款單號請填金流交易編號。系統不保存卡號，這個檔案的原始檔也不保存。"
        ),
    ),
    "payment_token": (
        gettext_lazy("%(column)s 含有付款 token %(value)s。"),
        gettext_lazy(
            "刪除付款 token，改填金流交易編號。系統不保存 token，這個檔案的原始檔也不保存。"
        ),
    ),
}

WARNINGS: dict[str, object] = {
    "customer_key_hashed": gettext_lazy(
        "%(count)s 列的 customer_key 不是雜湊值，已用 HMAC-SHA256 雜湊後才保存，原始值沒有保存。"
    ),
    "duplicate_order_id": gettext_lazy(
        "%(count)s 列的 order_id 在檔案內重複；對帳時會標為重複，不會重複計算營收。"
    ),
    "outside_period": gettext_lazy(
        "%(count)s 列的 created_at 不在請求期間 %(start)s 到 %(end)s 內。"
    ),
    "extra_columns": gettext_lazy("已忽略 %(count)s 個額外欄位：%(columns)s。"),
}

READ_REASONS = {
    "truncated": gettext_lazy("檔案不完整，可能上傳中斷"),
    "damaged": gettext_lazy("檔案已損壞"),
    "encoding": gettext_lazy("文字編碼不是 UTF-8 也不是 Big5"),
}


def describe(code: str, params: dict | None = None) -> tuple[str, str]:
    """(message, hint) of an error code in the active language."""
    message, hint = ERRORS[code]
    values = dict(params or {})
    if code == "unreadable_file":
        values["reason"] = str(READ_REASONS.get(values.get("reason"), values.get("reason", "")))
    if code == "missing_column" and "label" not in values:
        column = schema.column_info(values.get("column"))
        values["label"] = column.label_zh if column else ""
    if code == "blank_value" and "help" not in values:
        column = schema.column_info(values.get("column"))
        values["help"] = column.help_zh if column else ""
    return format_message(message, values), format_message(hint, values)


def format_message(text, values: dict) -> str:
    try:
        return str(text) % values
    except (KeyError, TypeError, ValueError):
        return str(text)


def file_error(code: str, column: str = "", **params) -> dict:
    message, hint = describe(code, {"column": column, **params})
    entry = {"code": code, "message": message, "hint": hint}
    if column:
        entry["column"] = column
    return entry


def message_params(code: str, value: str) -> dict:
    """Parameters some messages carry inside the stored value."""
    if code == "wrong_field_count" and "/" in value:
        actual, expected = value.split("/", 1)
        return {"actual": actual, "expected": expected}
    if code == "too_long":
        return {"limit": value}
    if code == "amount_too_large":
        return {"limit": f"{schema.MAX_AMOUNT:,}"}
    return {}
