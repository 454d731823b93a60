"""Moderators run the credit economy: grants, exact balances, resets, allowances per period and per
role, blocks, history and the server's settings. Members may look at their own credits and history.

Knows Discord only as plain values handed in by the cog: member and role ids, and whether Discord
says the person running the command has the Manage Server permission. Who counts as a moderator is
decided here, for every moderator action, whatever command visibility the server configured.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from bot import economy, i18n
from bot.credits import CreditService
from bot.economy import MAX_AMOUNT, RefillSchedule
from bot.errors import BalanceWouldGoNegative, InvalidOption, NeedsManageServer, NotAModerator, option_name
from bot.i18n import N_, _, number
from bot.models import (
    SERVER_WIDE,
    AllowanceRule,
    AllowanceUpdate,
    BlockChange,
    Correction,
    CreditSummary,
    EconomyOverview,
    EconomySettings,
    HistoryPage,
    KeepStems,
    MixStems,
    Period,
    ReuseCharge,
    SettingsUpdate,
)
from bot.quota_checks import MAX_REASON_LENGTH as MAX_REASON_LENGTH
from bot.quota_checks import check_amount as _check_amount
from bot.quota_checks import clean_reason as clean_reason
from bot.store import Store

log = logging.getLogger(__name__)

HISTORY_PAGE_SIZE = 10
"""Ledger lines per `/quota history` page: ten worst-case lines fit one embed description."""
MAX_COOLDOWN_SECONDS = 86_400
MAX_JOBS_PER_MEMBER = 100
SERVER_LANGUAGE = "server"

"""`/quota settings language` back to the server's own Discord language."""


@dataclass(frozen=True, slots=True)
class Member:
    """A server member as the command saw them: their user id and the ids of their roles."""

    user_id: int
    role_ids: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Actor:
    """Whoever runs a command: who they are, their roles, and whether Discord says they have Manage
    Server in this channel (administrators do)."""

    user_id: int
    role_ids: tuple[int, ...] = ()
    manage_guild: bool = False

    @property
    def member(self) -> Member:
        return Member(self.user_id, self.role_ids)


class Clearable(enum.StrEnum):
    """Settings `/quota settings clear:` can return to "not set"."""

    MODERATOR_ROLE = "moderator_role"
    AUDIT_CHANNEL = "audit_channel"
    JOBS_PER_MEMBER = "jobs_per_member"


@dataclass(frozen=True, slots=True)
class SettingsChange:
    """What a moderator asked `/quota settings` to change; None leaves a setting as it is."""

    refill_time: str | None = None
    timezone: str | None = None
    jobs_per_member: int | None = None
    cooldown_seconds: int | None = None
    moderator_role_id: int | None = None
    audit_channel_id: int | None = None
    reuse_charge: ReuseCharge | None = None
    keep_stems: KeepStems | None = None
    mix_stems: MixStems | None = None
    mix_price: int | None = None
    language: str | None = None  # a code of `bot.i18n.LANGUAGES`, or SERVER_LANGUAGE
    clear: frozenset[Clearable] = frozenset()

    @property
    def empty(self) -> bool:
        return self == SettingsChange()

    @property
    def touches_oversight(self) -> bool:
        """Whether it sets or clears who moderates or where moderators' actions are recorded."""
        return (
            self.moderator_role_id is not None
            or self.audit_channel_id is not None
            or bool(self.clear & {Clearable.MODERATOR_ROLE, Clearable.AUDIT_CHANNEL})
        )


class QuotaService:
    def __init__(
        self, store: Store, credits: CreditService, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._store = store
        self._credits = credits
        self._clock = clock

    # -- who may do what --------------------------------------------------------------------

    async def is_moderator(self, guild_id: int, actor: Actor) -> bool:
        settings, _rules = await self._store.economy.get(guild_id)
        return _is_moderator(settings, actor)

    async def require_moderator(self, guild_id: int, actor: Actor, action: str) -> None:
        """Refuse anyone but a moderator. `action` completes "Only moderators can …": an English
        msgid marked with `N_`, logged as it is and translated in the refusal."""
        settings, _rules = await self._store.economy.get(guild_id)
        if not _is_moderator(settings, actor):
            log.info("guild=%s member=%s: refused, not a moderator: %s", guild_id, actor.user_id, action)
            raise NotAModerator(action, settings.moderator_role_id)

    # -- looking ----------------------------------------------------------------------------

    async def view(self, guild_id: int, actor: Actor, member: Member | None = None) -> CreditSummary:
        """A member's credits. Anyone may view their own; others' need a moderator."""
        subject = member or actor.member
        if subject.user_id != actor.user_id:
            await self.require_moderator(guild_id, actor, N_("view other members' credits"))
        return await self._credits.summary(guild_id, subject.user_id, role_ids=subject.role_ids)

    async def history(
        self, guild_id: int, actor: Actor, member_id: int, *, page: int = 0, newest_id: int | None = None
    ) -> HistoryPage:
        """A page of a member's credit history, newest first. Anyone may see their own."""
        if member_id != actor.user_id:
            await self.require_moderator(guild_id, actor, N_("see other members' history"))
        return await self._store.accounts.history_page(
            guild_id, member_id, page=page, page_size=HISTORY_PAGE_SIZE, newest_id=newest_id
        )

    async def overview(self, guild_id: int) -> EconomyOverview:
        settings, rules = await self._store.economy.get(guild_id)
        return self._overview(settings, rules)

    async def audit_channel_id(self, guild_id: int) -> int | None:
        settings, _rules = await self._store.economy.get(guild_id)
        return settings.audit_channel_id

    # -- correcting balances ----------------------------------------------------------------

    async def grant(
        self, guild_id: int, actor: Actor, member: Member, amount: int, reason: str | None = None
    ) -> Correction:
        """Add bonus credits (kept until spent), or take credits away with a negative amount."""
        await self.require_moderator(guild_id, actor, N_("grant credits"))
        if amount == 0 or abs(amount) > MAX_AMOUNT:
            raise InvalidOption(
                "amount",
                # TRANSLATORS: {option} is the option: "`amount` must be …".
                _(
                    "`{option}` must be from 1 to {high} to add credits, or from -1 to -{high} to take them "
                    "away. Nothing was changed.",
                    option=option_name("amount"),
                    high=number(MAX_AMOUNT),
                ),
            )
        reason = clean_reason(reason)
        adjustment = await self._store.accounts.grant(
            guild_id,
            member.user_id,
            amount,
            actor_id=actor.user_id,
            reason=reason,
            role_ids=member.role_ids,
        )
        if adjustment.after is None:
            raise BalanceWouldGoNegative(member.user_id, -amount, adjustment.before.total)
        _log(guild_id, actor, member, "granted %+d credits", amount)
        return Correction(member.user_id, adjustment, reason, amount)

    async def set_balance(
        self, guild_id: int, actor: Actor, member: Member, amount: int, reason: str | None = None
    ) -> Correction:
        await self.require_moderator(guild_id, actor, N_("set balances"))
        _check_amount(amount, low=0)
        reason = clean_reason(reason)
        adjustment = await self._store.accounts.set_balance(
            guild_id,
            member.user_id,
            amount,
            actor_id=actor.user_id,
            reason=reason,
            role_ids=member.role_ids,
        )
        _log(guild_id, actor, member, "set the balance to %s", amount)
        return Correction(member.user_id, adjustment, reason, amount)

    async def reset(
        self, guild_id: int, actor: Actor, member: Member, reason: str | None = None
    ) -> Correction:
        await self.require_moderator(guild_id, actor, N_("reset balances"))
        reason = clean_reason(reason)
        adjustment = await self._store.accounts.reset_balance(
            guild_id,
            member.user_id,
            actor_id=actor.user_id,
            reason=reason,
            role_ids=member.role_ids,
        )
        _log(guild_id, actor, member, "reset the balance")
        return Correction(member.user_id, adjustment, reason)

    async def block(
        self, guild_id: int, actor: Actor, member: Member, reason: str | None = None
    ) -> BlockChange:
        await self.require_moderator(guild_id, actor, N_("block members"))
        return await self._set_blocked(guild_id, actor, member, True, clean_reason(reason))

    async def unblock(self, guild_id: int, actor: Actor, member: Member) -> BlockChange:
        await self.require_moderator(guild_id, actor, N_("unblock members"))
        return await self._set_blocked(guild_id, actor, member, False, None)

    async def _set_blocked(
        self, guild_id: int, actor: Actor, member: Member, blocked: bool, reason: str | None
    ) -> BlockChange:
        changed = await self._store.accounts.set_blocked(
            guild_id,
            member.user_id,
            blocked,
            actor_id=actor.user_id,
            reason=reason,
            role_ids=member.role_ids,
        )
        if changed:
            _log(guild_id, actor, member, "blocked" if blocked else "unblocked")
        return BlockChange(member.user_id, blocked, changed, reason)

    # -- the server's rules -----------------------------------------------------------------

    async def set_allowance(
        self,
        guild_id: int,
        actor: Actor,
        amount: int,
        *,
        period: Period | None = None,
        role_id: int | None = None,
        apply_now: bool = False,
    ) -> AllowanceUpdate:
        """Set the server's allowance (and period), or a role's allowance. It takes effect at the
        next refill, or at once for everyone it concerns with `apply_now`."""
        await self.require_moderator(guild_id, actor, N_("change allowances"))
        _check_amount(amount, low=0)
        if role_id is not None and period is not None:
            settings, _rules = await self._store.economy.get(guild_id)
            if period is not settings.period:
                raise InvalidOption(
                    "period",
                    # TRANSLATORS: {option} is the option: "`period` belongs …". {now} says when
                    # allowances refill now ("every Monday"); {period} is the chosen period as the
                    # option's list shows it ("Weekly (refills on Mondays)"). Use this catalog's
                    # own names for the options `amount` and `period`; keep the command as it is.
                    _(
                        "`{option}` belongs to the whole server: every allowance refills on the same "
                        "schedule (now {now}). Set it without a role, e.g. `/quota allowance amount:100 "
                        "period:{period}`. Nothing was changed.",
                        option=option_name("period"),
                        now=_(economy.REFILLS[settings.period]),
                        period=_(economy.PERIOD_NAMES[period]),
                    ),
                )
            period = None
        update = await self._store.economy.set_allowance(
            guild_id,
            amount,
            role_id=SERVER_WIDE if role_id is None else role_id,
            period=period,
            apply_now=apply_now,
            actor_id=actor.user_id,
        )
        log.info(
            "guild=%s moderator=%s: allowance for %s %s -> %s (%s%s)",
            guild_id,
            actor.user_id,
            f"role {role_id}" if role_id is not None else "the server",
            update.previous_amount,
            amount,
            update.period,
            ", applied now" if apply_now else "",
        )
        return update

    async def update_settings(self, guild_id: int, actor: Actor, change: SettingsChange) -> SettingsUpdate:
        """Change the server's settings; with nothing to change, just show them, with the server's
        monthly budget (set by the bot's owner) and what is left of it.

        Who moderates (`moderator_role`) and where their actions are recorded (`audit_channel`)
        need Manage Server: a member who moderates only through the role could otherwise hand the
        role to everyone, or silence the audit channel before granting themselves credits."""
        await self.require_moderator(guild_id, actor, N_("see or change the server's credit settings"))
        if not actor.manage_guild and change.touches_oversight:
            log.info(
                "guild=%s member=%s: refused, no Manage Server: moderator role or audit channel",
                guild_id,
                actor.user_id,
            )
            raise NeedsManageServer(N_("change or clear the moderator role or the audit channel"))
        changes: dict[str, Any] = {}
        if change.refill_time is not None:
            minute = economy.parse_refill_time(change.refill_time)
            if minute is None:
                raise InvalidOption(
                    "refill_time",
                    # TRANSLATORS: {option} is the option: "`refill_time` must be …".
                    _(
                        "`{option}` must be a time of day as HH:MM on a 24-hour clock, e.g. 18:30. Nothing "
                        "was changed.",
                        option=option_name("refill_time"),
                    ),
                )
            changes["refill_minute"] = minute
        if change.timezone is not None:
            zone = economy.canonical_timezone(change.timezone)
            if zone is None:
                raise InvalidOption(
                    "timezone",
                    # TRANSLATORS: {option} is the option: "`timezone` is not …". Time zone names
                    # (Europe/Berlin, UTC) stay as they are: they are what the option takes.
                    _(
                        "`{option}` is not a time zone {bot} knows here; pick one from the list, e.g. "
                        "Europe/Berlin or UTC. Nothing was changed.",
                        option=option_name("timezone"),
                        bot="StemBot",
                    ),
                )
            changes["timezone"] = zone
        if change.jobs_per_member is not None:
            if not 1 <= change.jobs_per_member <= MAX_JOBS_PER_MEMBER:
                raise InvalidOption(
                    "jobs_per_member",
                    # TRANSLATORS: {option} is the option: "`jobs_per_member` must be …".
                    _(
                        "`{option}` must be from 1 to {high}. Nothing was changed.",
                        option=option_name("jobs_per_member"),
                        high=number(MAX_JOBS_PER_MEMBER),
                    ),
                )
            changes["jobs_per_member"] = change.jobs_per_member
        if change.cooldown_seconds is not None:
            if not 0 <= change.cooldown_seconds <= MAX_COOLDOWN_SECONDS:
                raise InvalidOption(
                    "cooldown_seconds",
                    # TRANSLATORS: {option} is the option: "`cooldown_seconds` must be …".
                    _(
                        "`{option}` must be from 0 to {high} (a day). Nothing was changed.",
                        option=option_name("cooldown_seconds"),
                        high=number(MAX_COOLDOWN_SECONDS),
                    ),
                )
            changes["cooldown_seconds"] = change.cooldown_seconds
        if change.moderator_role_id is not None:
            if change.moderator_role_id == guild_id:  # Discord gives @everyone the server's id
                raise InvalidOption(
                    "moderator_role",
                    # TRANSLATORS: {option} is the option: "`moderator_role` can't be …". Keep
                    # @everyone as it is (Discord's name for it).
                    _(
                        "`{option}` can't be @everyone: that would make every member a moderator. Nothing "
                        "was changed.",
                        option=option_name("moderator_role"),
                    ),
                )
            changes["moderator_role_id"] = change.moderator_role_id
        if change.audit_channel_id is not None:
            changes["audit_channel_id"] = change.audit_channel_id
        if change.reuse_charge is not None:
            changes["reuse_charge"] = change.reuse_charge
        if change.keep_stems is not None:
            changes["keep_stems"] = change.keep_stems
        if change.mix_stems is not None:
            changes["mix_stems"] = change.mix_stems
        if change.mix_price is not None:
            if not 0 <= change.mix_price <= MAX_AMOUNT:
                raise InvalidOption(
                    "mix_price",
                    # TRANSLATORS: {option} is the option: "`mix_price` must be …".
                    _(
                        "`{option}` must be a whole number of credits from 0 to {high}. Nothing was changed.",
                        option=option_name("mix_price"),
                        high=number(MAX_AMOUNT),
                    ),
                )
            changes["mix_price"] = change.mix_price
        if change.language is not None:
            if change.language == SERVER_LANGUAGE:
                changes["language"] = None
            elif i18n.known_language(change.language) is None:
                raise InvalidOption(
                    "language",
                    # TRANSLATORS: {option} is the option: "`language` must be …".
                    _(
                        "`{option}` must be one of the languages in the list. Nothing was changed.",
                        option=option_name("language"),
                    ),
                )
            else:
                changes["language"] = change.language
        for cleared in change.clear:
            name = {
                Clearable.MODERATOR_ROLE: "moderator_role_id",
                Clearable.AUDIT_CHANNEL: "audit_channel_id",
            }.get(cleared, str(cleared))
            if name in changes:
                raise InvalidOption(
                    "clear",
                    # TRANSLATORS: {option} is the option: "`clear` can't …". {setting} is the
                    # setting's option name (moderator_role, audit_channel).
                    _(
                        "`{option}` can't clear {setting} while also setting it. Nothing was changed.",
                        option=option_name("clear"),
                        setting=option_name(str(cleared)),
                    ),
                )
            changes[name] = None
        if not changes:
            settings, rules = await self._store.economy.get(guild_id)
            budget = await self._store.budgets.server(guild_id)
            return SettingsUpdate(settings, replace(self._overview(settings, rules), budget=budget))
        before, _rules = await self._store.economy.update_settings(guild_id, changes, actor_id=actor.user_id)
        after, rules = await self._store.economy.get(guild_id)
        log.info("guild=%s moderator=%s: settings changed: %s", guild_id, actor.user_id, sorted(changes))
        return SettingsUpdate(before, self._overview(after, rules))

    # -- helpers ----------------------------------------------------------------------------

    def _overview(self, settings: EconomySettings, rules: list[AllowanceRule]) -> EconomyOverview:
        current = economy.current_rules(rules)
        server = current.pop(SERVER_WIDE, self._store.policy.default_credits)
        tiers = tuple(sorted(((r, a) for r, a in current.items() if a > 0), key=lambda t: (-t[1], t[0])))
        now = max(self._clock(), settings.schedule_from)
        return EconomyOverview(
            settings=settings,
            server_allowance=server,
            role_allowances=tiers,
            jobs_per_member=settings.jobs_per_member or self._store.policy.jobs_per_member,
            next_refill_at=RefillSchedule.of(settings).next_refill(now),
        )


def _log(guild_id: int, actor: Actor, member: Member, what: str, *args: object) -> None:
    log.info("guild=%s moderator=%s member=%s: " + what, guild_id, actor.user_id, member.user_id, *args)


def _is_moderator(settings: EconomySettings, actor: Actor) -> bool:
    return actor.manage_guild or (
        settings.moderator_role_id is not None and settings.moderator_role_id in actor.role_ids
    )


__all__ = ["HISTORY_PAGE_SIZE", "Actor", "Clearable", "Member", "QuotaService", "SettingsChange"]
