"""Plain words for the codes a person would otherwise read: file-problem
codes, PLS job types and roles. The codes stay in the API (and as a small
hint on the pages, for support); people read these labels."""

from django.utils.translation import gettext_lazy as _

FILE_PROBLEMS = {
    "missing_column": _("缺少必填欄位"),
    "duplicate_column": _("同一欄位出現兩次"),
    "empty_file": _("檔案是空的"),
    "header_only": _("只有標題列，沒有資料"),
    "encrypted_xlsx": _("XLSX 有密碼保護"),
    "zip_bomb": _("XLSX 解壓後過大"),
    "too_many_rows": _("列數超過上限"),
    "unreadable_file": _("檔案無法讀取"),
    "unsupported_type": _("不是 CSV 或 XLSX"),
    "too_large": _("檔案太大"),
}

JOB_TYPES = {
    "data_request": _("追資料：建立或催交資料請求"),
    "people_sync": _("通知相關的人"),
    "reconciliation_import": _("跑對帳匯入"),
    "repo_change": _("改程式：實作匯入介面"),
    "project_runner": _("產出策略包"),
    "none": _("目前沒有要派的工作"),
}

ROLES = {
    "louis": _("負責人／核准"),
    "wade": _("資料負責人"),
    "huber": _("佐證查核"),
    "pls": _("PLS 機器人"),
}


def code_label(code: str) -> str:
    """The plain label of a file-problem code, or the code itself when none
    is known (a new code must still show something)."""
    return str(FILE_PROBLEMS.get(code, code))


def job_label(job_type: str) -> str:
    return str(JOB_TYPES.get(job_type, job_type))


def role_label(role: str) -> str:
    return str(ROLES.get(role, role))


# The tag file's columns as the evidence-import page explains them, in the
# reader's language (the file itself accepts codes and Chinese alike).
TAG_COLUMN_HELP = {
    "order_id": (_("訂單編號"), _("最新已驗收匯入裡的訂單編號。")),
    "tag": (
        _("標記"),
        _("已付款、已退款、重買 或 待釐清（也可以寫 paid、refunded、rebought、unresolved）。"),
    ),
    "payment_ref": (_("付款單號"), _("金流付款單號（標為已付款時附上）。")),
    "refund_ref": (_("退款單號"), _("退款或退刷單號（標為已退款、重買時附上）。")),
    "evidence_ref": (_("佐證編號"), _("其他佐證：對帳單、截圖或工單編號。")),
    "note": (_("備註"), _("補充說明，可留白。")),
}


def tag_column_help(name: str) -> tuple[str, str]:
    label, help_text = TAG_COLUMN_HELP.get(name, (name, ""))
    return str(label), str(help_text)


SYNC_ERRORS = {
    "auth": _("API 拒絕權杖"),
    "http": _("API 回應錯誤"),
    "timeout": _("API 逾時"),
    "connection": _("連不上 API"),
    "bad_response": _("API 回應格式不對"),
    "host_refused": _("API 主機不允許"),
    "invalid_data": _("資料沒有通過驗證"),
    "abandoned": _("同步中斷"),
    "internal": _("系統錯誤"),
}


def sync_error_label(code: str) -> str:
    return str(SYNC_ERRORS.get(code, code))
