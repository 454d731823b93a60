"""Members' credit accounts and the ledger: the one place credits move.

Every operation on an account first brings it up to date (opens it with the member's allowance, or
applies the refill it is due) in the same transaction, using the rules in `bot.economy`. `role_ids`
are the member's roles, for role allowances.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from bot import economy
from bot.models import (
    Adjustment,
    Balance,
    CreditPolicy,
    CreditSummary,
    EconomySettings,
    HistoryPage,
    Job,
    LedgerEntry,
    LedgerKind,
    Refund,
)
from bot.store import jobs
from bot.store.database import Database, Row, Tx
from bot.store.server_economy import ServerEconomy


@dataclass(frozen=True, slots=True)
class Account:
    guild_id: int
    user_id: int
    balance: Balance
    period_allowance: int  # this period's full allowance
    period_start: float  # the last refill (or when the account opened)
    blocked_reason: str | None
    blocked: bool = False


class Accounts:
    def __init__(self, db: Database, economy_settings: ServerEconomy, policy: CreditPolicy) -> None:
        self._db = db
        self._economy = economy_settings
        self.policy = policy

    # -- inside a unit of work --------------------------------------------------------------

    async def current(
        self, tx: Tx, guild_id: int, user_id: int, *, role_ids: Sequence[int], now: float
    ) -> tuple[Account, EconomySettings]:
        """The member's account as of `now`: opened with their allowance if new, refilled if due.

        The account's row stays locked until the transaction ends (see `read`), so whatever the
        caller decides from it (limits, cooldown, balance) holds when it writes."""
        settings, rules = await self._economy.read(tx, guild_id)
        starting = self.policy.default_credits
        account = await read(tx, guild_id, user_id)
        if account is None:
            allowance = economy.allowance_at(rules, role_ids, starting, now)
            opened = await tx.execute(
                "INSERT INTO accounts (guild_id, user_id, allowance_left, bonus, period_allowance, "
                "period_start, created_at) VALUES (?, ?, ?, 0, ?, ?, ?) ON CONFLICT DO NOTHING",
                (guild_id, user_id, allowance, allowance, now, now),
            )
            if not opened:  # another transaction opened it first (PostgreSQL): take theirs
                return await self.current(tx, guild_id, user_id, role_ids=role_ids, now=now)
            fresh = Account(guild_id, user_id, Balance(0, 0), allowance, now, None)
            await move(
                tx,
                fresh,
                LedgerKind.ALLOWANCE,
                allowance,
                0,
                now=now,
                reason="starting credits",
                applied=True,
            )
            return replace(fresh, balance=Balance(allowance, 0)), settings
        due = economy.refill_due(settings, rules, role_ids, since=account.period_start, now=now)
        if due is None:
            return account, settings
        allowance = economy.allowance_at(rules, role_ids, starting, due)
        change = allowance - account.balance.allowance_left
        after = await move(
            tx,
            account,
            LedgerKind.REFILL,
            change,
            0,
            now=due,
            period_allowance=allowance,
            period_start=due,
            record=change != 0,
        )
        assert after is not None
        return replace(account, balance=after, period_allowance=allowance, period_start=due), settings

    async def refund(
        self, tx: Tx, account: Account, job: Job, now: float, *, own_cancel: bool = False
    ) -> Refund:
        """Give a failed or cancelled job's credits back, each part where it came from (see
        `economy.refund`); what came back.

        For our failures no roles are known here, so the refill itself waits for the member's next
        command; but if any refill may have happened since the job started, the allowance part
        comes back as bonus. `own_cancel`: the member cancelled it, and the caller brought their
        account up to date with their roles (`current`) in this transaction: the refill that
        counts is the one they got, and the allowance part of a period that ended is not returned.
        """
        reserve = await tx.fetchone(
            "SELECT allowance_change, bonus_change, created_at FROM ledger WHERE job_id = ? AND kind = ?",
            (job.id, LedgerKind.RESERVE),
        )
        from_allowance, from_bonus = (
            (-reserve["allowance_change"], -reserve["bonus_change"]) if reserve else (job.cost, 0)
        )
        reserved_at = reserve["created_at"] if reserve else job.created_at
        if own_cancel:
            refilled = account.period_start > reserved_at
        else:
            settings, rules = await self._economy.read(tx, job.guild_id)
            refilled = (
                account.period_start > reserved_at
                or economy.refill_due(settings, rules, None, since=reserved_at, now=now) is not None
            )
        back = economy.refund(
            from_allowance,
            from_bonus,
            account.balance,
            account.period_allowance,
            refilled=refilled,
            own_cancel=own_cancel,
        )
        moved = await move(
            tx, account, LedgerKind.REFUND, back.to_allowance, back.to_bonus, now=now, job_id=job.id
        )
        assert moved is not None
        return back

    # -- members ----------------------------------------------------------------------------

    async def balance(self, guild_id: int, user_id: int, role_ids: Sequence[int] = ()) -> int:
        async with self._db.transaction() as tx:
            account, _ = await self.current(tx, guild_id, user_id, role_ids=role_ids, now=self._db.now())
            return account.balance.total

    async def summary(self, guild_id: int, user_id: int, *, role_ids: Sequence[int]) -> CreditSummary:
        """Everything about the member's credits, as of now: one set of figures for `/credits`
        and `/quota view`."""
        async with self._db.transaction() as tx:
            now = self._db.now()
            account, settings = await self.current(tx, guild_id, user_id, role_ids=role_ids, now=now)
            _, rules = await self._economy.read(tx, guild_id)
            spent = int(
                await tx.scalar(
                    "SELECT COALESCE(SUM(-l.amount), 0) FROM ledger l JOIN jobs j ON j.id = l.job_id "
                    "WHERE l.guild_id = ? AND l.user_id = ? AND l.kind IN (?, ?) AND j.created_at >= ?",
                    (guild_id, user_id, LedgerKind.RESERVE, LedgerKind.REFUND, account.period_start),
                )
            )
            # Priced mixes are spending too, counted (as jobs are) in the period they were asked in.
            spent += int(
                await tx.scalar(
                    "SELECT COALESCE(SUM(-l.amount), 0) FROM ledger l JOIN mixes m ON m.id = l.mix_id "
                    "WHERE l.guild_id = ? AND l.user_id = ? AND l.kind IN (?, ?) AND m.created_at >= ?",
                    (guild_id, user_id, LedgerKind.MIX_CHARGE, LedgerKind.MIX_REFUND, account.period_start),
                )
            )
            in_flight = await jobs.in_flight(tx, guild_id, user_id)
            cooldown_until = await jobs.cooldown_until(tx, settings, user_id, now)
        return CreditSummary(
            allowance_left=account.balance.allowance_left,
            bonus=account.balance.bonus,
            allowance=account.period_allowance,
            next_allowance=economy.allowance_at(rules, role_ids, self.policy.default_credits),
            period=settings.period,
            next_refill_at=economy.RefillSchedule.of(settings).next_refill(max(now, settings.schedule_from)),
            period_started_at=account.period_start,
            spent_this_period=spent,
            jobs_in_flight=in_flight,
            jobs_per_member=settings.jobs_per_member or self.policy.jobs_per_member,
            blocked=account.blocked,
            blocked_reason=account.blocked_reason,
            next_split_at=cooldown_until,
        )

    # -- moderators' corrections ------------------------------------------------------------

    async def grant(
        self, guild_id: int, user_id: int, amount: int, *, actor_id: int, reason: str | None,
        role_ids: Sequence[int],
    ) -> Adjustment:  # fmt: skip
        """Add `amount` bonus credits, or take `-amount` away (bonus first, then allowance).
        Refused (nothing changes, `after` is None) if the balance would go below zero."""

        def change(account: Account) -> tuple[int, int] | None:
            if amount >= 0:
                return 0, amount
            if -amount > account.balance.total:
                return None
            taken_allowance, taken_bonus = economy.take_away(-amount, account.balance)
            return -taken_allowance, -taken_bonus

        return await self._correct(guild_id, user_id, LedgerKind.GRANT, change, actor_id, reason, role_ids)

    async def set_balance(
        self, guild_id: int, user_id: int, amount: int, *, actor_id: int, reason: str | None,
        role_ids: Sequence[int],
    ) -> Adjustment:  # fmt: skip
        """Set the balance to exactly `amount`: allowance up to this period's allowance, the rest bonus."""

        def change(account: Account) -> tuple[int, int]:
            target, current = economy.set_to(amount, account.period_allowance), account.balance
            return target.allowance_left - current.allowance_left, target.bonus - current.bonus

        return await self._correct(guild_id, user_id, LedgerKind.SET, change, actor_id, reason, role_ids)

    async def reset_balance(
        self, guild_id: int, user_id: int, *, actor_id: int, reason: str | None, role_ids: Sequence[int]
    ) -> Adjustment:
        """Back to this period's full allowance, bonus cleared."""

        def change(account: Account) -> tuple[int, int]:
            return account.period_allowance - account.balance.allowance_left, -account.balance.bonus

        return await self._correct(guild_id, user_id, LedgerKind.RESET, change, actor_id, reason, role_ids)

    async def _correct(
        self,
        guild_id: int,
        user_id: int,
        kind: LedgerKind,
        change: Callable[[Account], tuple[int, int] | None],
        actor_id: int,
        reason: str | None,
        role_ids: Sequence[int],
    ) -> Adjustment:
        """A moderator's correction in one transaction: `change` says how much of the up-to-date
        account's allowance and bonus moves, or None to refuse (nothing changes)."""
        async with self._db.transaction() as tx:
            now = self._db.now()
            account, _ = await self.current(tx, guild_id, user_id, role_ids=role_ids, now=now)
            parts = change(account)
            after = None
            if parts is not None:
                after = await move(tx, account, kind, *parts, now=now, actor_id=actor_id, reason=reason)
            return await _adjustment(tx, account, after)

    async def set_blocked(
        self,
        guild_id: int,
        user_id: int,
        blocked: bool,
        *,
        actor_id: int,
        reason: str | None,
        role_ids: Sequence[int],
    ) -> bool:
        """Block or unblock the member from starting splits; a ledger row (amount 0) records who and
        why. Returns False, changing nothing, if they already were."""
        async with self._db.transaction() as tx:
            now = self._db.now()
            account, _ = await self.current(tx, guild_id, user_id, role_ids=role_ids, now=now)
            if account.blocked == blocked:
                return False
            await tx.execute(
                "UPDATE accounts SET blocked_at = ?, blocked_by = ?, blocked_reason = ? "
                "WHERE guild_id = ? AND user_id = ?",
                (
                    now if blocked else None,
                    actor_id if blocked else None,
                    reason if blocked else None,
                    guild_id,
                    user_id,
                ),
            )
            kind = LedgerKind.BLOCK if blocked else LedgerKind.UNBLOCK
            await move(tx, account, kind, 0, 0, now=now, actor_id=actor_id, reason=reason, applied=True)
            return True

    # -- the ledger -------------------------------------------------------------------------

    async def ledger(self, guild_id: int, user_id: int) -> list[LedgerEntry]:
        """The member's ledger, oldest first."""
        rows = await self._db.fetchall(
            "SELECT * FROM ledger WHERE guild_id = ? AND user_id = ? ORDER BY id", (guild_id, user_id)
        )
        return [_ledger_entry(row) for row in rows]

    async def refund_of(self, job_id: int) -> Refund | None:
        """What came back of a refunded job's credits, as its ledger rows say (None: nothing was
        refunded). What the reserve took and the refund did not return expired with its period."""
        rows = await self._db.fetchall(
            "SELECT kind, allowance_change, bonus_change FROM ledger WHERE job_id = ? AND kind IN (?, ?)",
            (job_id, LedgerKind.RESERVE, LedgerKind.REFUND),
        )
        moved = {row["kind"]: (row["allowance_change"], row["bonus_change"]) for row in rows}
        if LedgerKind.REFUND not in moved or LedgerKind.RESERVE not in moved:
            return None
        to_allowance, to_bonus = moved[LedgerKind.REFUND]
        taken = -sum(moved[LedgerKind.RESERVE])
        return Refund(to_allowance, to_bonus, expired=taken - to_allowance - to_bonus)

    async def history_page(
        self, guild_id: int, user_id: int, *, page: int, page_size: int, newest_id: int | None = None
    ) -> HistoryPage:
        """One page of the member's credit changes, newest first. Zero-amount `charge` rows (a held
        cost becoming spent) are left out: the `reserve` row already shows the credits leaving.
        Pass the first page's `newest_id` to later pages so rows added meanwhile don't shift them."""
        async with self._db.reading() as tx:
            if newest_id is None:
                newest_id = int(
                    await tx.scalar(
                        "SELECT COALESCE(MAX(id), 0) FROM ledger WHERE guild_id = ? AND user_id = ?",
                        (guild_id, user_id),
                    )
                )
            where = "guild_id = ? AND user_id = ? AND id <= ? AND kind != ?"
            params = (guild_id, user_id, newest_id, LedgerKind.CHARGE)
            total = int(await tx.scalar(f"SELECT COUNT(*) FROM ledger WHERE {where}", params))
            pages = max(1, -(-total // page_size))
            page = min(max(page, 0), pages - 1)
            rows = await tx.fetchall(
                "SELECT *, (SELECT song_title FROM jobs WHERE jobs.id = ledger.job_id) AS job_song "
                f"FROM ledger WHERE {where} ORDER BY id DESC LIMIT ? OFFSET ?",
                (*params, page_size, page * page_size),
            )
        entries = tuple(replace(_ledger_entry(row), job_song=row["job_song"]) for row in rows)
        return HistoryPage(entries, page, pages, total, newest_id)

    async def ledger_mismatches(self) -> list[tuple[int, int, int, int]]:
        """Where the ledger and the balances disagree (see `ledger_mismatches`): empty when the
        books agree."""
        async with self._db.reading() as tx:
            return await ledger_mismatches(tx)


async def ledger_mismatches(tx: Tx) -> list[tuple[int, int, int, int]]:
    """Where the ledger and the balances disagree, as (guild, user, balance, ledger total):
    accounts whose allowance or bonus part differs from the sum of its ledger changes, and
    ledger rows whose `balance_after` is not the running total of the rows up to them."""
    rows = await tx.fetchall(
        "SELECT a.guild_id, a.user_id, a.balance, COALESCE(SUM(l.amount), 0) AS total FROM accounts a "
        "LEFT JOIN ledger l ON l.guild_id = a.guild_id AND l.user_id = a.user_id "
        "GROUP BY a.guild_id, a.user_id "
        "HAVING a.allowance_left != COALESCE(SUM(l.allowance_change), 0) "
        "OR a.bonus != COALESCE(SUM(l.bonus_change), 0)"
    )
    found = [(r["guild_id"], r["user_id"], r["balance"], r["total"]) for r in rows]
    rows = await tx.fetchall(
        "SELECT guild_id, user_id, balance_after, running FROM (SELECT guild_id, user_id, "
        "balance_after, SUM(amount) OVER (PARTITION BY guild_id, user_id ORDER BY id) AS running "
        "FROM ledger) AS running_totals WHERE balance_after != running"
    )
    found += [(r["guild_id"], r["user_id"], r["balance_after"], r["running"]) for r in rows]
    return found


async def read(tx: Tx, guild_id: int, user_id: int) -> Account | None:
    """The member's account, its row locked until the transaction ends: every change to an account
    and to what its limits count (its jobs in flight, its last split) happens under this lock."""
    row = await tx.fetchone(
        "SELECT * FROM accounts WHERE guild_id = ? AND user_id = ?" + tx.for_update, (guild_id, user_id)
    )
    if row is None:
        return None
    return Account(
        guild_id,
        user_id,
        Balance(row["allowance_left"], row["bonus"]),
        row["period_allowance"],
        row["period_start"],
        row["blocked_reason"] if row["blocked_at"] is not None else None,
        blocked=row["blocked_at"] is not None,
    )


async def move(
    tx: Tx,
    account: Account,
    kind: LedgerKind,
    allowance_change: int,
    bonus_change: int,
    *,
    now: float,
    job_id: int | None = None,
    mix_id: int | None = None,
    actor_id: int | None = None,
    reason: str | None = None,
    period_allowance: int | None = None,
    period_start: float | None = None,
    record: bool = True,
    applied: bool = False,
) -> Balance | None:
    """Change the member's balance and write its ledger row; the one way credits move.

    The update is conditional on neither part going below zero, so a spend can never overdraw even
    if `account` were stale; returns the balance after, or None when it would overdraw. `applied`:
    the caller changed the account itself (opening it, or the reserve's own conditional debit), so
    only the ledger row is written. `record=False` writes no row (a refill that changed nothing).
    """
    if not applied:
        assignments = ["allowance_left = allowance_left + ?", "bonus = bonus + ?"]
        values: list[Any] = [allowance_change, bonus_change]
        if period_allowance is not None:
            assignments.append("period_allowance = ?")
            values.append(period_allowance)
        if period_start is not None:
            assignments.append("period_start = ?")
            values.append(period_start)
        changed = await tx.execute(
            f"UPDATE accounts SET {', '.join(assignments)} WHERE guild_id = ? AND user_id = ? "
            "AND allowance_left >= ? AND bonus >= ?",
            (*values, account.guild_id, account.user_id, -allowance_change, -bonus_change),
        )
        if changed != 1:
            return None
    after = Balance(account.balance.allowance_left + allowance_change, account.balance.bonus + bonus_change)
    if record:
        await tx.execute(
            "INSERT INTO ledger (guild_id, user_id, kind, amount, allowance_change, bonus_change, "
            "balance_after, job_id, mix_id, actor_id, reason, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                account.guild_id,
                account.user_id,
                kind,
                allowance_change + bonus_change,
                allowance_change,
                bonus_change,
                after.total,
                job_id,
                mix_id,
                actor_id,
                reason,
                now,
            ),
        )
    return after


async def debit(tx: Tx, account: Account, from_allowance: int, from_bonus: int) -> bool:
    """Take a cost from the account in one conditional statement: False if it cannot pay it."""
    changed = await tx.execute(
        "UPDATE accounts SET allowance_left = allowance_left - ?, bonus = bonus - ? "
        "WHERE guild_id = ? AND user_id = ? AND allowance_left >= ? AND bonus >= ?",
        (from_allowance, from_bonus, account.guild_id, account.user_id, from_allowance, from_bonus),
    )
    return changed == 1


async def _adjustment(tx: Tx, account: Account, after: Balance | None) -> Adjustment:
    in_flight = await jobs.in_flight(tx, account.guild_id, account.user_id)
    return Adjustment(account.balance, after, in_flight)


def _ledger_entry(row: Row) -> LedgerEntry:
    return LedgerEntry(
        id=row["id"],
        guild_id=row["guild_id"],
        user_id=row["user_id"],
        kind=LedgerKind(row["kind"]),
        amount=row["amount"],
        balance_after=row["balance_after"],
        job_id=row["job_id"],
        actor_id=row["actor_id"],
        reason=row["reason"],
        created_at=row["created_at"],
        allowance_change=row["allowance_change"],
        bonus_change=row["bonus_change"],
    )
