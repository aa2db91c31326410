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
