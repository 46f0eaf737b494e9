"""BG/NBD (Fader, Hardie & Lee 2005, "Counting your customers the easy way"): how many purchases
a customer will make, and whether they are still a customer at all, from (frequency, recency, T).

A customer buys at a Poisson rate lambda ~ Gamma(r, alpha) and, after each purchase, leaves for
good with probability p ~ Beta(a, b). Nobody tells a shop that a customer has left, which is why
the dropout has to be inferred from the silence since the last purchase.

Also home of what the value models share: the checks of a purchase history and the maximum
likelihood fit on log-parameters with the diagnosis of a fit that cannot be trusted.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import minimize
from scipy.special import expit, gammaln, hyp2f1, psi
from scipy.stats import chi2

Floats = NDArray[np.float64]
Objective = Callable[[Floats], tuple[float, Floats]]

# Parameters are fitted in [1e-6, 1e6] once time (or money) is rescaled to order one: wide enough
# for any real population, and a parameter pressed against a bound is how a fit says the model
# does not describe the data (e.g. a -> 0, nobody ever drops out).
LOG_BOUND = float(np.log(1e6))
# A parameter this close to its bound, in log terms (a factor of ~2.7), is taken as having hit
# it: the likelihood is so flat there that the optimiser stops before reaching the bound itself.
NEAR_BOUND = 1.0
# The 5 % critical value of the likelihood-ratio statistic, halved: see BetaGeoModel._no_dropout.
NO_DROPOUT_GAIN = float(chi2.ppf(0.90, df=1) / 2)


@dataclass(frozen=True)
class LogFit:
    """What ``fit_log_params`` found: log-parameters and whether to trust them."""

    theta: Floats
    converged: bool
    degenerate: str | None


def fit_log_params(
    objective: Objective,
    names: Sequence[str],
    *,
    bounds: Sequence[tuple[float, float]] | None = None,
    meaning: Mapping[tuple[str, str], str] | None = None,
    start: Floats | None = None,
) -> LogFit:
    """Minimise ``objective`` (value and gradient in log-parameters) with L-BFGS-B, by default
    from all parameters at one.

    Log-parameters make the positivity constraints disappear and put every parameter on the same
    relative scale; the bounds keep a runaway parameter finite so predictions stay computable,
    and ``meaning`` turns a bound hit, e.g. ``("a", "lower")``, into what it says about the data.
    """
    box = list(bounds or [(-LOG_BOUND, LOG_BOUND)] * len(names))
    initial = np.zeros(len(names)) if start is None else start
    initial = np.clip(initial, [lo for lo, _ in box], [hi for _, hi in box])
    result = minimize(objective, initial, jac=True, method="L-BFGS-B", bounds=box, options={"maxiter": 1000})
    theta = np.asarray(result.x, dtype=float)
    reasons = [] if result.success else [f"the optimiser did not converge ({result.message})"]
    for name, value, (lo, hi) in zip(names, theta, box, strict=True):
        side = "lower" if value - lo < NEAR_BOUND else "upper" if hi - value < NEAR_BOUND else None
        if side:
            default = f"{name} ran into its {side} bound"
            reasons.append((meaning or {}).get((name, side), default))
    return LogFit(theta=theta, converged=bool(result.success), degenerate="; ".join(reasons) or None)


def check_history(frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> tuple[Floats, Floats, Floats]:
    """The three arrays as floats of one shape, or a ValueError naming what is wrong.

    Histories that cannot happen (a repeat purchase at age 0, a last purchase after today) would
    otherwise be scored silently, usually as a summary built with other conventions.
    """
    x, tx, age = (np.asarray(v, dtype=float) for v in (frequency, recency, T))
    try:
        x, tx, age = np.broadcast_arrays(x, tx, age)
    except ValueError as exc:
        raise ValueError(f"frequency, recency and T differ in shape: {x.shape}, {tx.shape}, {age.shape}.") from exc
    check_frequency(x)
    _reject(~(np.isfinite(tx) & np.isfinite(age)), "recency and T must be finite numbers")
    _reject(tx < 0, "recency (age at the last purchase) must be >= 0")
    _reject(tx > age, "recency (age at the last purchase) cannot exceed T (age now)")
    _reject((x == 0) & (tx != 0), "recency must be 0 when frequency is 0 (no repeat purchase to date it)")
    _reject(
        (x > 0) & (tx == 0),
        "recency must be > 0 when frequency is > 0: repeat purchases come after the first one "
        "(purchases in the first period should have counted once)",
    )
    return x, tx, age


def check_frequency(frequency: Floats) -> None:
    """Frequencies count repeat purchase periods: a fraction means the wrong column was passed."""
    _reject(~np.isfinite(frequency), "frequency must be a finite number")
    _reject((frequency < 0) | (frequency != np.round(frequency)), "frequency must be a whole number >= 0")


def _reject(bad: NDArray[np.bool_], message: str) -> None:
    if bad.any():
        where = np.flatnonzero(bad.ravel())
        raise ValueError(f"{message}; {where.size} customer(s) break this, the first at position {where[0]}.")


def weighted_rows(*columns: Floats) -> tuple[list[Floats], Floats]:
    """Distinct rows of the columns and how often each occurs: a summary on a daily or weekly
    grid repeats the same history many times, and the likelihood needs each only once."""
    rows, counts = np.unique(np.column_stack(columns), axis=0, return_counts=True)
    return [rows[:, i] for i in range(rows.shape[1])], counts.astype(float)


# What a bound hit says about the data. Dropout dying out (a -> 0 or b -> infinity) is diagnosed
# by BetaGeoModel._no_dropout, which also catches it short of the bounds.
_MEANING = {
    ("a", "upper"): "a -> infinity: every customer has the same dropout probability",
    ("r", "upper"): "r -> infinity: every customer buys at the same rate",
}


class BetaGeoModel:
    """BG/NBD with scikit-learn's shape: ``fit`` learns ``params_`` (r, alpha, a, b, alpha in the
    time unit of recency and T), ``log_likelihood_`` (the total, comparable with the papers),
    ``converged_`` and ``degenerate_`` (why the fit should not be trusted, or None).

    ``penalizer`` adds ``penalizer * sum(param ** 2)`` to the mean negative log-likelihood, as
    lifetimes does, on the parameters with time rescaled so that the oldest customer has T = 1:
    a nudge that keeps a small or degenerate population away from the bounds.
    """

    def __init__(self, penalizer: float = 0.0) -> None:
        self.penalizer = penalizer

    def fit(self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> BetaGeoModel:
        x, tx, age = check_history(frequency, recency, T)
        if x.size == 0 or age.max() <= 0:
            raise ValueError("BG/NBD needs customers observed for some time (T > 0).")
        # Time in units of the oldest customer's age keeps alpha near one whatever the period.
        scale = float(age.max())
        (ux, utx, uage), weights = weighted_rows(x.ravel(), tx.ravel() / scale, age.ravel() / scale)
        histories = _Histories(ux, utx, uage, weights)
        fit = fit_log_params(self._objective(histories), ("r", "alpha", "a", "b"), meaning=_MEANING)
        r, alpha, a, b = np.exp(fit.theta)
        self.params_ = {"r": float(r), "alpha": float(alpha * scale), "a": float(a), "b": float(b)}
        self.log_likelihood_ = float(_Histories(x.ravel(), tx.ravel(), age.ravel()).log_likelihood(self._params())[0])
        self.converged_ = fit.converged
        reasons = (fit.degenerate, self._no_dropout(histories, fit.theta))
        self.degenerate_ = "; ".join(r for r in reasons if r) or None
        return self

    def probability_alive(self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> Floats:
        """P(still a customer | history) (Fader, Hardie & Lee 2008, note 021)."""
        return self._alive(*check_history(frequency, recency, T))

    def expected_purchases(self, t: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> Floats:
        """Expected repeat purchases in the next ``t`` periods given the history (FHL 2005, eq. 10).

        Eq. 10's ((alpha+T)/(alpha+T+t)) ** (r+x) * 2F1(r+x, b+x; a+b+x-1; z) multiplies a vanishing
        power by a series that grows like (1-z) ** -x; Euler's transformation gives the same value
        as (1-z) ** (a-1) * 2F1(a+b-1-r, a-1; a+b+x-1; z), whose terms shrink as x grows, so
        heavy buyers get a number instead of inf * 0. ``t`` broadcasts against the histories.
        """
        x, tx, age = check_history(frequency, recency, T)
        horizon = np.asarray(t, dtype=float)
        if not np.all(np.isfinite(horizon) & (horizon >= 0)):
            raise ValueError("t (periods ahead) must be finite and >= 0.")
        r, alpha, a, b = self._params()
        # a = 1 is a removable singularity of eq. 10 (0 / 0); the value is continuous in a.
        a = a if abs(a - 1) > 1e-7 else 1 + 1e-7
        z = horizon / (alpha + age + horizon)
        c = a + b + x - 1
        alive = self._alive(x, tx, age)
        with np.errstate(over="ignore", invalid="ignore"):
            tail = np.exp((a - 1) * np.log1p(-z)) * hyp2f1(a + b - 1 - r, a - 1, c, z)
            exact = alive * c / (a - 1) * (1 - tail)
        if np.all(np.isfinite(exact)):
            return exact
        # With a and b in the thousands (a dropout chance that hardly varies between customers)
        # 2F1 overflows. Its limit is a fixed dropout p, at its posterior mean a / (a + b + x):
        # E = P(alive) / p * (1 - ((alpha + T) / (alpha + T + p t)) ** (r + x)); agrees with
        # the exact value to 1e-4 where both can be computed.
        p = a / (a + b + x)
        limit = alive / p * -np.expm1((r + x) * (np.log(alpha + age) - np.log(alpha + age + p * horizon)))
        return np.where(np.isfinite(exact), exact, limit)

    def _alive(self, x: Floats, tx: Floats, age: Floats) -> Floats:
        """On the log scale, so that a frequent buyer's ((alpha + T) / (alpha + recency)) ** (r + x)
        cannot overflow."""
        r, alpha, a, b = self._params()
        odds_dead = np.log(a) - np.log(b + np.maximum(x, 1) - 1) + (r + x) * (np.log(alpha + age) - np.log(alpha + tx))
        return np.where(x > 0, expit(-odds_dead), 1.0)

    def _params(self) -> Floats:
        p = self.params_
        return np.array([p["r"], p["alpha"], p["a"], p["b"]])

    def _objective(self, histories: _Histories) -> Objective:
        """Mean negative log-likelihood plus the penalty, and its gradient, in log-parameters."""
        total = histories.weights.sum()

        def objective(theta: Floats) -> tuple[float, Floats]:
            params = np.exp(theta)
            ll, grad = histories.log_likelihood(params)
            penalty = self.penalizer * params**2
            return -ll / total + penalty.sum(), -grad / total + 2 * penalty

        return objective

    def _no_dropout(self, histories: _Histories, theta: Floats) -> str | None:
        """Why the fit is degenerate if it is no better than its a -> 0 limit, or None.

        Without dropout the likelihood keeps creeping up as a -> 0 and b grows, so flatly that the
        optimiser stops long before the bound (Online Retail: a ~ 0.007, b ~ 21). The limit is a
        model of its own (the NBD: nobody ever leaves); refitted with a held on its bound, it is
        compared with the full fit by the likelihood-ratio test for a parameter on the boundary of
        its space, whose 5 % critical value is half a chi-square(1) at 90 % (Self & Liang 1987).
        """
        box = [(-LOG_BOUND, LOG_BOUND)] * 4
        box[2] = (-LOG_BOUND, -LOG_BOUND)
        limit = fit_log_params(self._objective(histories), ("r", "alpha", "a", "b"), bounds=box, start=theta)
        gain = histories.log_likelihood(np.exp(theta))[0] - histories.log_likelihood(np.exp(limit.theta))[0]
        if gain >= NO_DROPOUT_GAIN:
            return None
        return (
            f"a -> 0: the data show no dropout at all; the BG/NBD fits no better than its no-dropout limit "
            f"(log-likelihood gain {max(gain, 0.0):.3g} < {NO_DROPOUT_GAIN:.3g}), P(alive) is ~1 for everyone and "
            f"the predictions are those of a model where nobody ever leaves"
        )


class _Histories:
    """Purchase histories (with how many customers share each) and their log-likelihood.

    The special functions of r + x, b + x and a + b + x depend on the frequency alone, which takes
    few distinct values: they are computed once per value, not once per customer.
    """

    def __init__(self, x: Floats, tx: Floats, age: Floats, weights: Floats | None = None) -> None:
        self.x, self.tx, self.age = x, tx, age
        self.weights = np.ones_like(x) if weights is None else weights
        self.levels, self.at = np.unique(x, return_inverse=True)

    def log_likelihood(self, params: Floats) -> tuple[float, Floats]:
        """Total (weighted) log-likelihood (FHL 2005, eq. 6) and its gradient in the log-parameters.

        The likelihood adds two terms, alive at T or dropped out after the last purchase; they are
        added with logaddexp, and w, the share of the second (the posterior probability of having
        dropped out), is also what weights their derivatives.
        """
        r, alpha, a, b = params
        x, tx, age, at, levels = self.x, self.tx, self.age, self.at, self.levels
        by_x = (
            gammaln(r + levels) + gammaln(b + levels) - gammaln(a + b + levels),
            psi(r + levels),
            psi(b + levels),
            psi(a + b + levels),
        )
        fixed, psi_rx, psi_bx, psi_abx = (term[at] for term in by_x)
        since_last = np.where(x > 0, np.log(a) - np.log(b + np.maximum(x, 1) - 1), -np.inf)
        log_age, log_tx = np.log(alpha + age), np.log(alpha + tx)
        alive = -(r + x) * log_age
        dropped = since_last - (r + x) * log_tx
        mix = np.logaddexp(alive, dropped)
        w = np.exp(dropped - mix)
        ll = fixed - gammaln(r) + r * np.log(alpha) + gammaln(a + b) - gammaln(b) + mix
        d_r = psi_rx - psi(r) + np.log(alpha) - (1 - w) * log_age - w * log_tx
        d_alpha = r / alpha - (r + x) * ((1 - w) / (alpha + age) + w / (alpha + tx))
        d_a = psi(a + b) - psi_abx + w / a
        d_b = psi(a + b) - psi_abx + psi_bx - psi(b) - w / (b + np.maximum(x, 1) - 1)
        weights = self.weights
        grad = [weights @ d_r * r, weights @ d_alpha * alpha, weights @ d_a * a, weights @ d_b * b]
        return float(weights @ ll), np.array(grad)
