"""What members and moderators read about credits: `/credits`, `/quota` answers, history, the
server's settings, and the audit channel's lines.

Every word is in the language being spoken (`bot.i18n`): the member's for the private answers;
the audit lines are public, so the cog renders them speaking the server's language."""

from __future__ import annotations

import discord

from bot.i18n import N_, _, ngettext, number, pgettext
from bot.models import (
    Balance,
    BlockChange,
    Correction,
    CreditSummary,
    HistoryPage,
    LedgerEntry,
    LedgerKind,
    Period,
)
from bot.render.common import (
    FAILED,
    INFO,
    MODERATOR,
    credit_amount,
    credit_change,
    moment,
    not_before,
    price_list,
    refusal,
    signed,
    timestamp,
)

# The server's rules are drawn beside its settings; the cog takes every credit answer from here.
from bot.render.server_settings import _budget_text as _budget_text
from bot.render.server_settings import allowance_update as allowance_update
from bot.render.server_settings import audit_allowance as audit_allowance
from bot.render.server_settings import audit_line, per_period
from bot.render.server_settings import audit_settings as audit_settings
from bot.render.server_settings import settings_overview as settings_overview
from bot.render.text import plain


def _balance_line(summary: CreditSummary) -> str:
    return ngettext("**{count}** credit", "**{count}** credits", summary.balance)


def _status_lines(summary: CreditSummary, *, own: bool) -> list[str]:
    lines: list[str] = []
    if summary.blocked:
        reason = plain(summary.blocked_reason) if summary.blocked_reason else None
        # TRANSLATORS: {reason} (where there is one) is the moderator's own words, as they typed them.
        if own and reason:
            blocked = _(
                "**Blocked from starting splits** by a moderator: {reason}. Ask a moderator if you "
                "think this is a mistake.",
                reason=reason,
            )
        elif own:
            blocked = _(
                "**Blocked from starting splits** by a moderator. Ask a moderator if you think this is "
                "a mistake."
            )
        elif reason:
            # TRANSLATORS: {reason} is the moderator's own words, as they typed them.
            blocked = _("**Blocked from starting splits** by a moderator: {reason}", reason=reason)
        else:
            blocked = _("**Blocked from starting splits** by a moderator")
        lines.append(f"🚫 {blocked}")
    if summary.next_split_at is not None:
        # TRANSLATORS: {when} is a moment: "in 3 minutes (12 March 2025 10:00)".
        lines.append(_("Next split possible {when} (cooldown).", when=not_before(summary.next_split_at)))
    return lines


def my_credits(summary: CreditSummary) -> discord.Embed:
    """`/credits`: a member's own credits in a few lines, readable on a phone. `/quota view` has
    the full detail."""
    lines = [f"{_balance_line(summary)} · {_parts_of(summary.allowance_left, summary.bonus)}"]
    lines += _status_lines(summary, own=True)
    if summary.next_refill_at is not None:
        # TRANSLATORS: {credits} is an amount ("100 credits"); {when} a moment: "in 3 days (12
        # March 2025 10:00)".
        lines.append(
            _(
                "Refills to {credits} {when}",
                credits=credit_amount(summary.next_allowance),
                when=moment(summary.next_refill_at),
            )
        )
    else:
        lines.append(_("One-off allowance, no refills: a moderator can grant bonus credits."))
    lines.append(
        _(
            "Splits running: {running} of {most}",
            running=number(summary.jobs_in_flight),
            most=number(summary.jobs_per_member),
        )
    )
    lines.append(f"\n**{_('Prices')}**\n{price_list()}")
    embed = discord.Embed(
        title=_("Your credits"), description="\n".join(lines), colour=FAILED if summary.blocked else INFO
    )
    embed.set_footer(text=_("Full detail: /quota view · every change: /quota history"))
    return embed


def credits(summary: CreditSummary, *, member_id: int | None = None) -> discord.Embed:
    """A member's credits in full, for `/quota view` (yourself, or anyone for moderators)."""
    own = member_id is None
    lines = [_balance_line(summary) + ("" if own else f" · <@{member_id}>")]
    lines += _status_lines(summary, own=own)
    embed = discord.Embed(
        title=_("Your credits in this server") if own else _("Credits in this server"),
        description="\n".join(lines),
        colour=FAILED if summary.blocked else INFO,
    )
    left = (
        ngettext("{count} left this period", "{count} left this period", summary.allowance_left)
        if summary.period is not Period.NEVER
        else ngettext("{count} left", "{count} left", summary.allowance_left)
    )
    embed.add_field(name=_("Allowance"), value=f"{per_period(summary.allowance, summary.period)}\n{left}")
    embed.add_field(
        name=_("Bonus"),
        # TRANSLATORS: {credits} is an amount of bonus credits: "50 credits".
        value=_("{credits}\nkept until spent", credits=credit_amount(summary.bonus)),
    )
    embed.add_field(
        name=_("Spent this period") if summary.period is not Period.NEVER else _("Spent so far"),
        value=credit_amount(summary.spent_this_period),
    )
    if summary.next_refill_at is not None:
        refill_values = {
            "when": moment(summary.next_refill_at),
            "credits": credit_amount(summary.next_allowance),
        }
        # TRANSLATORS: {when} is a moment: "in 3 days (12 March 2025 10:00)"; {credits} an amount.
        refill = (
            _("{when}\nback to {credits} (new allowance)", **refill_values)
            if summary.next_allowance != summary.allowance
            else _("{when}\nback to {credits}", **refill_values)
        )
    else:
        refill = _("Never: this server's allowance is one-off (a moderator can grant bonus credits).")
    embed.add_field(name=_("Next refill"), value=refill, inline=False)
    embed.add_field(
        name=_("Splits running"),
        value=_(
            "{running} of {most} at once",
            running=number(summary.jobs_in_flight),
            most=number(summary.jobs_per_member),
        ),
        inline=False,
    )
    embed.add_field(name=_("Prices"), value=price_list(), inline=False)
    embed.set_footer(
        text=_(
            "Splits use the allowance first, then bonus. Credits are held when a split starts and "
            "returned if it fails."
        )
    )
    return embed


def quota_refused(reason: str) -> discord.Embed:
    return refusal(reason)


def pager_refused() -> discord.Embed:
    return refusal(
        _(
            "Only whoever ran this `/quota history` can turn its pages. Run `/quota history` yourself "
            "to see your own."
        )
    )


def _parts_of(allowance_left: int, bonus: int) -> str:
    # TRANSLATORS: a balance's two parts, each a number of credits.
    return _("{allowance} allowance + {bonus} bonus", allowance=number(allowance_left), bonus=number(bonus))


def _parts(balance: Balance) -> str:
    return _parts_of(balance.allowance_left, balance.bonus)


_CORRECTION_TITLES: dict[LedgerKind, str] = {
    LedgerKind.GRANT: N_("Credits granted"),
    LedgerKind.SET: N_("Balance set"),
    LedgerKind.RESET: N_("Balance reset to the allowance"),
}
"""English msgids: `_(_CORRECTION_TITLES[kind])` where shown."""


def correction(kind: LedgerKind, done: Correction) -> discord.Embed:
    """The moderator's reply after a grant, set or reset."""
    before, after = done.adjustment.before, done.adjustment.after
    assert after is not None
    if kind is LedgerKind.GRANT and (done.amount or 0) < 0:
        title = _("Credits taken away")
    else:
        title = _(_CORRECTION_TITLES[kind])
    member = f"<@{done.member_id}>"
    lines = [
        # TRANSLATORS: {member} is a member (shown as their name); the balance before → after
        # ({count}), then the change ("+50", "-10").
        ngettext(
            "{member}: **{before}** → **{count}** credit ({change})",
            "{member}: **{before}** → **{count}** credits ({change})",
            after.total,
            member=member,
            before=number(before.total),
            change=signed(after.total - before.total),
        ),
        # TRANSLATORS: {parts} is a balance's two parts: "90 allowance + 50 bonus".
        _("Now {parts}.", parts=_parts(after)),
    ]
    if kind is LedgerKind.GRANT and (done.amount or 0) > 0:
        lines.append(_("Bonus credits are kept across refills until spent."))
    if done.reason:
        # TRANSLATORS: {reason} is the moderator's own words, as they typed them.
        lines.append(_("Reason: {reason}", reason=plain(done.reason)))
    running = done.adjustment.jobs_in_flight
    if running:
        lines.append(
            ngettext(
                "{count} of their splits is still running: credits held for a split come back if it fails.",
                "{count} of their splits are still running: credits held for a split come back if it fails.",
                running,
            )
        )
    embed = discord.Embed(title=title, description="\n".join(lines), colour=MODERATOR)
    embed.set_footer(text=_("Recorded in their /quota history."))
    return embed


def audit_correction(kind: LedgerKind, actor_id: int, done: Correction) -> str:
    """The audit channel's line for a grant, set or reset (public: render it speaking the server's
    language)."""
    before, after = done.adjustment.before, done.adjustment.after
    assert after is not None
    amount = done.amount or 0
    # In the audit lines: {moderator} and {member} are people, shown as their names; {before} →
    # {after} the member's balance before and after.
    values = {
        "moderator": f"<@{actor_id}>",
        "member": f"<@{done.member_id}>",
        "before": number(before.total),
        "after": number(after.total),
    }
    if kind is LedgerKind.GRANT and amount > 0:
        # TRANSLATORS: {moderator} and {member} are people, shown as their names; {change} the credits
        # given ("+50 credits"); {before} → {after} the member's balance before and after.
        text = _(
            "{moderator} granted {member} {change}: {before} → {after}",
            change=credit_change(amount),
            **values,
        )
    elif kind is LedgerKind.GRANT:
        # TRANSLATORS: {moderator} and {member} are people, shown as their names; {credits} the
        # credits taken ("50 credits"); {before} → {after} the member's balance before and after.
        text = _(
            "{moderator} took {credits} from {member}: {before} → {after}",
            credits=credit_amount(-amount),
            **values,
        )
    elif kind is LedgerKind.SET:
        # TRANSLATORS: {moderator} and {member} are people, shown as their names; {before} → {after}
        # the member's balance before and after.
        text = _("{moderator} set the balance of {member}: {before} → {after}", **values)
    else:
        # TRANSLATORS: as for "set the balance of" above.
        text = _("{moderator} reset the balance of {member}: {before} → {after}", **values)
    return audit_line(text, done.reason)


def block_change(change: BlockChange) -> discord.Embed:
    who = f"<@{change.member_id}>"
    if change.blocked:
        if change.changed:
            # TRANSLATORS: {member} (here and in the block answers below) is a member, shown as their name.
            text = _("{member} can no longer start splits here; they are told so if they try.", member=who)
            if change.reason:
                text += "\n" + _("Reason: {reason}", reason=plain(change.reason))
        else:
            text = _("{member} was already blocked.", member=who)
    else:
        text = (
            _("{member} can start splits again.", member=who)
            if change.changed
            else _("{member} wasn't blocked.", member=who)
        )
    colour = MODERATOR if change.changed else INFO
    # TRANSLATORS: the title of a moderator's answer: the member was blocked (or unblocked).
    title = _("Blocked") if change.blocked else _("Unblocked")
    return discord.Embed(title=title, description=text, colour=colour)


def audit_block(actor_id: int, change: BlockChange) -> str:
    values = {"moderator": f"<@{actor_id}>", "member": f"<@{change.member_id}>"}
    if change.blocked:
        text = _("{moderator} blocked {member} from starting splits", **values)
    else:
        text = _("{moderator} unblocked {member} from starting splits", **values)
    return audit_line(text, change.reason)


HISTORY_SONG_SHOWN = 60
"""Characters of a song's title a history line shows, escapes included."""

_HISTORY_WHAT: dict[LedgerKind, str] = {
    # TRANSLATORS: what a line of a member's credit history records.
    LedgerKind.ALLOWANCE: N_("starting credits"),
    LedgerKind.REFILL: N_("allowance refilled"),
    LedgerKind.SET: N_("balance set"),
    LedgerKind.RESET: N_("reset to allowance"),
    LedgerKind.BLOCK: N_("blocked from splitting"),
    LedgerKind.UNBLOCK: N_("unblocked"),
}
"""English msgids: `_(_HISTORY_WHAT[kind])` where shown."""


def _history_job(entry: LedgerEntry) -> str:
    kind = entry.kind
    song = plain(entry.job_song, limit=HISTORY_SONG_SHOWN) if entry.job_song else None
    if kind in (LedgerKind.MIX_CHARGE, LedgerKind.MIX_REFUND):
        # The split is named inside a sentence ("mix of job #7"), where some languages write it in
        # lower case: its own catalog entries.
        if song is not None:
            # TRANSLATORS: a split named inside a sentence ("mix of job #7 (Midnight Drive)"): {job}
            # is its number, {song} the song's title.
            job = pgettext("inside a sentence", "Job #{job} ({song})", job=entry.job_id, song=song)
        else:
            job = pgettext("inside a sentence", "Job #{job}", job=entry.job_id)
        if kind is LedgerKind.MIX_CHARGE:
            return _("mix of {job}", job=job)
        return _("mix of {job} failed (credits returned)", job=job)
    if song is not None:
        # TRANSLATORS: a split in a history line: {job} is its number, {song} the song's title.
        job = _("Job #{job} ({song})", job=entry.job_id, song=song)
    else:
        job = _("Job #{job}", job=entry.job_id)
    if kind is LedgerKind.RESERVE:
        # TRANSLATORS: {job} (here and in the history lines below) is a split: "Job #7 (Midnight Drive)".
        return _("{job} started (credits held)", job=job)
    if kind is LedgerKind.REFUND:
        return _("{job} failed (credits returned)", job=job)
    return _("{job} done", job=job)


def _history_what(entry: LedgerEntry) -> str:
    kind = entry.kind
    if kind in (
        LedgerKind.RESERVE,
        LedgerKind.REFUND,
        LedgerKind.CHARGE,
        LedgerKind.MIX_CHARGE,
        LedgerKind.MIX_REFUND,
    ):
        return _history_job(entry)
    if kind is LedgerKind.GRANT:
        what = _("bonus granted") if entry.amount >= 0 else _("credits taken away")
    else:
        what = _(_HISTORY_WHAT[kind])
    if entry.reason and kind is not LedgerKind.ALLOWANCE:
        # TRANSLATORS: {what} is what a history line records ("bonus granted"); {reason} the
        # moderator's own words, as they typed them.
        return _("{what}: {reason}", what=what, reason=plain(entry.reason, limit=HISTORY_REASON_SHOWN))
    return what


HISTORY_REASON_SHOWN = 200
"""Characters of a reason a history line shows, escapes included: ten lines fit one embed even
when a reason is all Markdown characters (each shown escaped, twice as long)."""


def history_line(entry: LedgerEntry) -> str:
    who = f"<@{entry.actor_id}>" if entry.actor_id is not None else "StemBot"
    return (
        f"{timestamp(entry.created_at, 'f')} · **{signed(entry.amount)}** → {number(entry.balance_after)} · "
        f"{_history_what(entry)} · {who}"
    )


def history(page: HistoryPage, member_id: int) -> discord.Embed:
    """One page of a member's credit history, newest first."""
    if page.entries:
        body = "\n".join(history_line(entry) for entry in page.entries)
    else:
        body = _("No credit changes yet.")
    mention = f"<@{member_id}>"
    # TRANSLATORS: {member} is a member, shown as their name.
    heading = _("{member} · newest first", member=mention)
    embed = discord.Embed(title=_("Credit history"), description=f"{heading}\n\n{body}", colour=INFO)
    # TRANSLATORS: {page} and {pages} are numbers; {count} the member's credit changes in all. After
    # them, the legend of each line: keep the order of its parts as the lines show them.
    embed.set_footer(
        text=ngettext(
            "Page {page} of {pages} · {count} change · time · change → balance after · what · who",
            "Page {page} of {pages} · {count} changes · time · change → balance after · what · who",
            page.total,
            page=number(page.page + 1),
            pages=number(page.pages),
        )
    )
    return embed
