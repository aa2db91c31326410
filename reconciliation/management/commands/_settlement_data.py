"""Settlement files as the payment providers write them, generated from an
order frame (vectorised): one charge line per paid order (a fee of 2.75%),
a charge and a refund line per refunded order, and on purpose a few paid
orders without a line (missing), lines no order has (orphans) and charges
short of the order's amount (mismatches).

Writers: ECPay's credit-card funding file (Big5, ="…" cells, yyyyMMdd and
yyyy/MM/dd HH:mm:ss dates, refunds negative), Stripe's itemised payout
reconciliation CSV, NewebPay's and the canonical names."""

from pathlib import Path

import numpy as np
import pandas as pd

FEE_RATE = 0.0275


def make_settlement(
    orders: pd.DataFrame,
    *,
    seed: int,
    missing_share: float = 0.02,
    orphan_share: float = 0.01,
    mismatch_share: float = 0.005,
) -> pd.DataFrame:
    """The settlement lines of `orders` (order_id, created_at, amount,
    payment_status, payment_ref): canonical columns, one row per line."""
    rng = np.random.default_rng(seed)
    orders = orders.drop_duplicates("order_id")
    settled = orders[orders["payment_status"].isin(["paid", "refunded"])]
    n = len(settled)
    keep = rng.random(n) >= missing_share
    settled = settled[keep | (settled["payment_status"] != "paid").to_numpy()]
    n = len(settled)
    gross = settled["amount"].to_numpy(np.float64).copy()
    short = rng.random(n) < mismatch_share
    gross[short] = np.maximum(gross[short] - 2000, 1)
    created = pd.to_datetime(settled["created_at"], utc=True)
    charges = pd.DataFrame(
        {
            "payment_ref": settled["payment_ref"].to_numpy(object),
            "provider_txn_id": "TX" + pd.Series(np.arange(n)).map("{:09d}".format).to_numpy(object),
            "txn_type": "charge",
            "gross_amount": gross,
            "fee_amount": np.round(gross * FEE_RATE),
            "txn_date": created.to_numpy(),
            "settlement_date": (created + pd.Timedelta(days=3)).to_numpy(),
        }
    )
    refunded = (settled["payment_status"] == "refunded").to_numpy()
    refunds = charges[refunded].copy()
    refunds["provider_txn_id"] = "RF" + refunds["provider_txn_id"].str[2:]
    refunds["txn_type"] = "refund"
    refunds["gross_amount"] = -refunds["gross_amount"]
    refunds["fee_amount"] = 0.0
    refunds["txn_date"] = refunds["txn_date"] + np.timedelta64(1, "D")
    refunds["settlement_date"] = refunds["settlement_date"] + np.timedelta64(1, "D")
    orphans_n = max(int(n * orphan_share), 1)
    orphans = charges.sample(orphans_n, random_state=seed).copy()
    orphans["payment_ref"] = "PAY-ORPHAN-" + pd.Series(np.arange(orphans_n)).astype(str).to_numpy(
        object
    )
    orphans["provider_txn_id"] = "OR" + orphans["provider_txn_id"].str[2:]
    lines = pd.concat([charges, refunds, orphans], ignore_index=True)
    lines["net_amount"] = lines["gross_amount"] - lines["fee_amount"]
    lines["payout_id"] = "PO-" + pd.to_datetime(lines["settlement_date"], utc=True).dt.strftime(
        "%Y%m%d"
    )
    return lines.sort_values("txn_date", kind="stable").reset_index(drop=True)


def _taipei(stamps) -> pd.Series:
    return pd.to_datetime(stamps, utc=True).dt.tz_convert("Asia/Taipei")


def _money(values) -> pd.Series:
    return pd.Series(values).map("{:.0f}".format)


def write_ecpay(lines: pd.DataFrame, path: Path) -> None:
    """ECPay's 信用卡撥款對帳: Big5, ="…" text cells, 交易日期 as
    yyyy/MM/dd HH:mm:ss, 請款日期 as yyyyMMdd, refunds negative."""
    out = pd.DataFrame(
        {
            "訂單編號": '="' + lines["payment_ref"].astype(str) + '"',
            "授權單號": '="' + lines["provider_txn_id"].astype(str) + '"',
            "交易日期": _taipei(lines["txn_date"]).dt.strftime("%Y/%m/%d %H:%M:%S"),
            "請款日期": _taipei(lines["settlement_date"]).dt.strftime("%Y%m%d"),
            "交易金額": _money(lines["gross_amount"]),
            "手續費": _money(lines["fee_amount"]),
            "撥款金額": _money(lines["net_amount"]),
        }
    )
    text = "綠界科技 信用卡撥款對帳明細\r\n" + out.to_csv(index=False, lineterminator="\r\n")
    path.write_bytes(text.encode("cp950"))


def write_stripe(lines: pd.DataFrame, path: Path) -> None:
    """Stripe's itemised payout reconciliation report (UTC times)."""
    out = pd.DataFrame(
        {
            "balance_transaction_id": "txn_" + lines["provider_txn_id"].astype(str),
            "created_utc": pd.to_datetime(lines["txn_date"], utc=True).dt.strftime(
                "%Y-%m-%d %H:%M:%S"
            ),
            "available_on_utc": pd.to_datetime(lines["settlement_date"], utc=True).dt.strftime(
                "%Y-%m-%d %H:%M:%S"
            ),
            "currency": "twd",
            "gross": lines["gross_amount"].map("{:.2f}".format),
            "fee": lines["fee_amount"].map("{:.2f}".format),
            "net": lines["net_amount"].map("{:.2f}".format),
            "reporting_category": lines["txn_type"],
            "automatic_payout_id": "po_" + lines["payout_id"].astype(str),
            "payment_intent_id": lines["payment_ref"].astype(str),
            "charge_id": "",
        }
    )
    path.write_bytes(out.to_csv(index=False).encode())


def write_newebpay(lines: pd.DataFrame, path: Path) -> None:
    out = pd.DataFrame(
        {
            "MerchantOrderNo": lines["payment_ref"].astype(str),
            "TradeNo": lines["provider_txn_id"].astype(str),
            "PayTime": _taipei(lines["txn_date"]).dt.strftime("%Y-%m-%d %H:%M:%S"),
            "FundTime": _taipei(lines["settlement_date"]).dt.strftime("%Y-%m-%d"),
            "Amt": _money(lines["gross_amount"]),
            "Fee": _money(lines["fee_amount"]),
        }
    )
    path.write_bytes(("\ufeff" + out.to_csv(index=False)).encode())


def write_canonical(lines: pd.DataFrame, path: Path) -> None:
    out = lines.copy()
    for name in ("txn_date", "settlement_date"):
        out[name] = pd.to_datetime(out[name], utc=True).dt.strftime("%Y-%m-%dT%H:%M:%S+00:00")
    for name in ("gross_amount", "fee_amount", "net_amount"):
        out[name] = out[name].map("{:.2f}".format)
    path.write_bytes(out.to_csv(index=False).encode())


WRITERS = {
    "ecpay": write_ecpay,
    "stripe": write_stripe,
    "newebpay": write_newebpay,
    "canonical": write_canonical,
}
