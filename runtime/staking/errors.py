"""staking errors, in receipts as `staking.<Name>`."""

from __future__ import annotations

from runtime.primitives import DispatchError
from runtime.staking.params import MODULE


class StakingError(DispatchError):
    module = MODULE


class ZeroAmount(StakingError):
    """Bonding or unbonding nothing."""


class InsufficientBalance(StakingError):
    """The free balance does not cover the bond."""


class BelowMinimumBond(StakingError):
    """The bond would stay below staking.params.min_bond (and above zero)."""


class NotBonded(StakingError):
    """The account has no (or not enough) bonded stake for this."""


class TooManyUnbondingChunks(StakingError):
    """Too many unbonding amounts wait at once; withdraw the released ones first."""


class NothingToWithdraw(StakingError):
    """No unbonding amount has reached its release height."""


class OfferActive(StakingError):
    """Unbonding below the minimum bond while an offer stands; clear the offer first."""


class InvalidOffer(StakingError):
    """The offer's models, capacity or region break the rules."""


class UnknownModel(StakingError):
    """The offer names a model that is not registered."""


class NoOffer(StakingError):
    """The account has no offer to clear."""


class TooManyExecutors(StakingError):
    """The model already has staking.params.max_executors_per_model executors."""


class OfferLocked(StakingError):
    """The account set its offer less than staking.params.offer_lock_blocks ago; the message says when it may change."""


ERRORS = (
    ZeroAmount, InsufficientBalance, BelowMinimumBond, NotBonded, TooManyUnbondingChunks, NothingToWithdraw,
    OfferActive, InvalidOffer, UnknownModel, NoOffer, TooManyExecutors, OfferLocked,
)
