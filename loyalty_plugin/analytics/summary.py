"""Transactions to the per-customer RFM summary that the customer-value models are fitted on.

The conventions are lifetimes' ``summary_data_from_transaction_data`` (with ``freq=grain`` and
``freq_multiplier=period_days``), because the published BG/NBD and Gamma-Gamma figures (Fader,
Hardie & Lee 2005; Fader & Hardie 2013) were computed that way and a model is only comparable
with them on data summarised the same way:

- timestamps are floored to the ``grain`` (a calendar day by default); purchases in the same
  grain slot count once and their amounts are added up;
- the first purchase is not a repeat: ``frequency`` counts the slots after it and
  ``monetary_value`` averages their amounts;
- ages (``recency``, ``T``) are measured between floored timestamps and expressed in periods of
  ``period_days`` days, so CDNOW's weekly figures come from daily slots and ``period_days=7``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

COLUMNS = ["frequency", "recency", "T", "monetary_value", "orders", "total", "first", "last"]


def rfm_summary(
    transactions: pd.DataFrame,
    *,
    until: str | pd.Timestamp,
    period_days: float = 1.0,
    grain: str = "D",
    customer: str = "customer",
    when: str = "at",
    amount: str = "amount",
) -> pd.DataFrame:
    """One row per customer (index: ``str`` of the customer id), in the columns of ``COLUMNS``.

    ``until`` is the end of the observation, inclusive of its whole ``grain`` slot: purchases
    later than that are ignored, and ``T`` is the age at its floored value. ``grain`` is a pandas
    period alias ("D", "W", "h", ...). Counting purchases per slot rather than per transaction
    keeps a basket split into several invoices from looking like a loyal customer. ``first`` and
    ``last`` are the actual timestamps of the first and last purchase kept (in their zone, if
    any; slots are cut in that zone's wall-clock time).
    """
    if period_days <= 0:
        raise ValueError(f"period_days must be positive, got {period_days}.")
    missing = [name for name in (customer, when, amount) if name not in transactions.columns]
    if missing:
        raise ValueError(f"transactions lack the column(s) {', '.join(missing)}.")
    stamps = pd.to_datetime(transactions[when]).reset_index(drop=True)
    at = _naive(stamps)
    if at.isna().any() or transactions[customer].isna().any():
        raise ValueError(f"transactions have rows without a {customer!r} or a {when!r}.")
    amounts = pd.to_numeric(transactions[amount]).to_numpy(dtype=float)
    if np.isnan(amounts).any():
        raise ValueError(f"transactions have rows without an {amount!r}.")
    end = _slot(_naive(pd.Series([_in_zone(pd.Timestamp(until), stamps.dt.tz)])), grain).iloc[0]
    slots = _slot(at, grain)
    keep = (slots <= end).to_numpy()
    stamps = stamps[keep].reset_index(drop=True)
    codes, uniques = pd.factorize(transactions[customer].to_numpy()[keep])
    ids = pd.Index(uniques).astype(str)
    if ids.has_duplicates:
        raise ValueError(f"{customer!r} values that differ only in type (such as 7 and '7') would merge as strings.")
    frame = pd.DataFrame({"c": codes, "slot": slots.to_numpy()[keep], "amount": amounts[keep]})
    if frame.empty:
        return pd.DataFrame(columns=COLUMNS, index=pd.Index([], name=customer, dtype=str))

    per_slot = frame.groupby(["c", "slot"], sort=True)["amount"].sum().reset_index()
    repeat = per_slot["c"].duplicated().to_numpy()  # rows are sorted by slot within a customer
    by_customer = per_slot.groupby("c", sort=True)
    first_slot = by_customer["slot"].min()
    span = pd.Timedelta(days=period_days)
    orders = by_customer.size()
    out = pd.DataFrame(
        {
            "frequency": (orders - 1).astype(float),
            "recency": (by_customer["slot"].max() - first_slot) / span,
            "T": (end - first_slot) / span,
            "monetary_value": per_slot["amount"].where(repeat).groupby(per_slot["c"]).mean().fillna(0.0),
            "orders": orders,
            "total": by_customer["amount"].sum(),
            "first": stamps.groupby(codes).min(),
            "last": stamps.groupby(codes).max(),
        }
    )
    out.index = ids[out.index.to_numpy()].rename(customer)
    return out.sort_index()


def _naive(at: pd.Series) -> pd.Series:
    """Wall-clock time in the data's own zone: a purchase's day is the day the customer saw."""
    return at.dt.tz_localize(None) if at.dt.tz is not None else at


def _in_zone(moment: pd.Timestamp, tz: object) -> pd.Timestamp:
    return moment.tz_convert(tz) if moment.tzinfo is not None and tz is not None else moment


def _slot(at: pd.Series, grain: str) -> pd.Series:
    return at.dt.to_period(grain).dt.start_time
