"""Gamma-Gamma model of spend (Fader & Hardie 2013, "The Gamma-Gamma model of monetary value")
and the customer lifetime value that combines it with the BG/NBD.

Each transaction of a customer is worth z ~ Gamma(p, nu) and the customer's nu ~ Gamma(q, v):
a customer's mean spend is shrunk towards the population's, the less so the more repeat
purchases back it. The model assumes spend does not depend on how often a customer buys.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import gammaln, psi

from .bgnbd import BetaGeoModel, Floats, check_frequency, fit_log_params, weighted_rows

# The average month, in days: a year's 365.25 days over 12, so 12 months make a year.
MONTH_DAYS = 365.25 / 12

# What a bound hit says about the data; q <= 1 (no finite mean spend) is reported by the fit itself.
_MEANING = {
    ("p", "upper"): "p -> infinity: every customer's transactions are worth exactly their mean",
    ("q", "upper"): "q -> infinity: every customer has the same mean spend",
}


def check_spend(frequency: ArrayLike, monetary_value: ArrayLike) -> tuple[Floats, Floats]:
    """Frequencies and mean repeat spends as floats of one shape, or a ValueError.

    Spend must be positive where there are repeat purchases: the model's logarithms of a zero or
    a refund-dominated spend would otherwise poison the fit without a word.
    """
    x = np.asarray(frequency, dtype=float)
    m = np.asarray(monetary_value, dtype=float)
    if x.shape != m.shape:
        raise ValueError(f"frequency and monetary_value differ in shape: {x.shape}, {m.shape}.")
    check_frequency(x)
    if not np.all(np.isfinite(m)) or np.any(m < 0):
        raise ValueError("monetary_value must be a finite amount >= 0.")
    if np.any((x > 0) & (m == 0)):
        raise ValueError("monetary_value must be > 0 for customers with repeat purchases (frequency > 0).")
    return x, m


class GammaGammaModel:
    """Gamma-Gamma with scikit-learn's shape: ``fit`` learns ``params_`` (p, q, v, v in the
    currency of monetary_value), ``log_likelihood_`` (total over the repeat customers),
    ``converged_`` and ``degenerate_`` (why the fit should not be trusted, or None)."""

    def fit(self, frequency: ArrayLike, monetary_value: ArrayLike) -> GammaGammaModel:
        """Fit on the customers with repeat purchases: only they have a mean repeat spend."""
        x, m = check_spend(frequency, monetary_value)
        repeat = x > 0
        if repeat.sum() < 2:
            raise ValueError("Gamma-Gamma needs at least two customers with repeat purchases.")
        # Money in units of the median spend keeps v near one whatever the currency.
        scale = float(np.median(m[repeat]))
        (ux, um), weights = weighted_rows(x[repeat], m[repeat] / scale)
        total = weights.sum()

        def objective(theta: Floats) -> tuple[float, Floats]:
            ll, grad = _log_likelihood(np.exp(theta), ux, um)
            return -(weights @ ll) / total, -(grad @ weights) / total

        fit = fit_log_params(objective, ("p", "q", "v"), meaning=_MEANING)
        p, q, v = np.exp(fit.theta)
        self.params_ = {"p": float(p), "q": float(q), "v": float(v * scale)}
        self.log_likelihood_ = float(_log_likelihood(self._params(), x[repeat], m[repeat])[0].sum())
        self.converged_ = fit.converged
        # A mean for the customers the model cannot give one: those with no repeat purchase.
        if q > 1:
            self.population_spend_ = float(p * v * scale / (q - 1))
            infinite_mean = None
        else:
            self.population_spend_ = float(np.average(um, weights=weights) * scale)
            infinite_mean = (
                f"q = {q:.3g} <= 1: the model's mean spend is infinite; customers without repeat purchases "
                f"get the observed mean of the repeat customers' spend ({self.population_spend_:.4g})"
            )
        self.degenerate_ = "; ".join(r for r in (fit.degenerate, infinite_mean) if r) or None
        return self

    def expected_spend(self, frequency: ArrayLike, monetary_value: ArrayLike) -> Floats:
        """E[mean transaction value | x, mean spend] (Fader & Hardie 2013, eq. 5): a weighted
        average of the population mean p v / (q - 1) and the customer's own, the latter weighted
        by p x / (p x + q - 1).

        Customers without a repeat purchase get ``population_spend_``; so does anyone whose
        posterior mean is infinite (p x + q <= 1, possible only when ``degenerate_`` says q <= 1).
        """
        x, m = check_spend(frequency, monetary_value)
        p, q, v = self._params()
        denominator = p * x + q - 1
        with np.errstate(divide="ignore", invalid="ignore"):
            own = p * (v + x * m) / denominator
        return np.where((x > 0) & (denominator > 0), own, self.population_spend_)

    def _params(self) -> Floats:
        return np.array([self.params_["p"], self.params_["q"], self.params_["v"]])


def _log_likelihood(params: Floats, x: Floats, m: Floats) -> tuple[Floats, Floats]:
    """Each repeat customer's log-likelihood of their mean spend m over x transactions (Fader &
    Hardie 2013, eq. 3) and its gradient in the log-parameters (shape 3 x n)."""
    p, q, v = params
    px = p * x
    log_pool = np.log(v + x * m)
    ll = (
        gammaln(px + q)
        - gammaln(px)
        - gammaln(q)
        + q * np.log(v)
        + (px - 1) * np.log(m)
        + px * np.log(x)
        - (px + q) * log_pool
    )
    shared = psi(px + q)
    d_p = x * (shared - psi(px) + np.log(m) + np.log(x) - log_pool)
    d_q = shared - psi(q) + np.log(v) - log_pool
    d_v = q / v - (px + q) / (v + x * m)
    return ll, np.stack([d_p * p, d_q * q, d_v * v])


def lifetime_value(
    bgnbd: BetaGeoModel,
    gamma_gamma: GammaGammaModel,
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    monetary_value: ArrayLike,
    *,
    months: int = 12,
    period_days: float = 1.0,
    monthly_discount: float = 0.0,
) -> Floats:
    """Expected, discounted value of each customer's purchases over the next ``months``:

        CLV = sum over k = 1..months of  S * (E[Y(k L)] - E[Y((k - 1) L)]) / (1 + d) ** k

    where E[Y(t)] is the BG/NBD's expected purchases in the next t periods, S the Gamma-Gamma's
    expected spend per purchase, L = (365.25 / 12) / period_days the month in periods and d the
    monthly discount rate, applied at the end of each month as lifetimes'
    ``customer_lifetime_value`` does (which takes a month as 30 days, or 4.345 weeks). Spend and
    purchases are multiplied as independent, which is the Gamma-Gamma's own assumption.
    """
    if months < 1 or months != int(months):
        raise ValueError(f"months must be a whole number >= 1, got {months}.")
    if period_days <= 0 or monthly_discount < 0:
        raise ValueError("period_days must be > 0 and monthly_discount >= 0.")
    spend = gamma_gamma.expected_spend(frequency, monetary_value)
    edges = np.arange(int(months) + 1, dtype=float) * (MONTH_DAYS / period_days)
    cumulative = bgnbd.expected_purchases(edges.reshape(-1, *[1] * spend.ndim), frequency, recency, T)
    discount = (1 + monthly_discount) ** -np.arange(1, int(months) + 1, dtype=float)
    return spend * np.tensordot(discount, np.diff(cumulative, axis=0), axes=1)
