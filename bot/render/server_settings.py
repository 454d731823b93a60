"""What moderators read about the server's credit settings (`/quota settings`), and what the
credit answers share: an allowance with its period, an audit channel's line.

Every word is in the language being spoken (`bot.i18n`); the audit lines are public, so the cog
renders them speaking the server's language."""

from __future__ import annotations

from functools import reduce

import discord

from bot.economy import REFILLS
from bot.i18n import N_, _, known_language, ngettext, number, pgettext
from bot.models import (
    SERVER_WIDE,
    AllowanceUpdate,
    EconomySettings,
    KeepStems,
    MixStems,
    Period,
    ReuseCharge,
    ServerBudget,
    SettingsUpdate,
)
from bot.product import LINK_LIFETIME
from bot.render.common import (
    INFO,
    MODERATOR,
    PER_PERIOD,
    Message,
    api_price_list,
    credit_amount,
    duration,
    listing,
    moment,
    pack,
    timestamp,
)
from bot.render.text import plain


def per_period(amount: int, period: Period) -> str:
    """An allowance with its period: "100 credits per day"."""
    # TRANSLATORS: an allowance: {credits} is an amount ("100 credits"), {period} how often
    # ("per day", "once (a one-off allowance)").
    return _("{credits} {period}", credits=credit_amount(amount), period=_(PER_PERIOD[period]))


def audit_line(text: str, reason: str | None = None) -> str:
    """One audit line: what was done, then the moderator's reason where they gave one."""
    if reason:
        # TRANSLATORS: {reason} is the moderator's own words, as they typed them.
        given = _("Reason: {reason}", reason=plain(reason))
        return f"🧾 {text} · {given}"
    return f"🧾 {text}"


def allowance_update(update: AllowanceUpdate) -> discord.Embed:
    """The moderator's reply to `/quota allowance`: what changed, and when it takes effect."""
    previous = number(update.previous_amount)
    if update.role_id == SERVER_WIDE:
        title = _("Server allowance changed")
        # TRANSLATORS: {credits} is an amount ("100 credits") and {period} how often ("per day");
        # {previous} the old amount (a number) and {previous_period} its period.
        lines = [
            _(
                "Every member: **{credits}** {period} (was {previous} {previous_period}).",
                credits=credit_amount(update.amount),
                period=_(PER_PERIOD[update.period]),
                previous=previous,
                previous_period=_(PER_PERIOD[update.previous_period]),
            )
        ]
    else:
        title = _("Role allowance changed")
        role = f"<@&{update.role_id}>"
        if update.amount == 0:
            # TRANSLATORS: {role} is a role, shown as its name; {previous} its old allowance (a number).
            lines = [
                _(
                    "{role} no longer has an allowance of its own (was {previous}).",
                    role=role,
                    previous=previous,
                )
            ]
        else:
            # TRANSLATORS: {role} is a role, shown as its name; {credits} an amount ("100 credits"),
            # {period} how often ("per day"); {previous} the old amount (a number).
            lines = [
                _(
                    "Members with {role}: **{credits}** {period} (was {previous}), or the server's "
                    "allowance if that is higher.",
                    role=role,
                    credits=credit_amount(update.amount),
                    period=_(PER_PERIOD[update.period]),
                    previous=previous,
                )
            ]
    if update.applied_now:
        lines.append(
            _(
                "**Applied now:** everyone it concerns has their allowance refilled to the new amount; "
                "bonus credits are kept."
            )
        )
    elif update.next_refill_at is not None:
        # TRANSLATORS: {when} is a moment: "in 3 days (12 March 2025 10:00)".
        lines.append(
            _(
                "**Takes effect at the next refill**, {when}. Until then members keep what they have.",
                when=moment(update.next_refill_at),
            )
        )
    else:
        lines.append(
            # TRANSLATORS: `apply_now: True` is the command's option as typed: write it with this
            # catalog's own name for the option `apply_now` (what the member's picker shows).
            _(
                "**New members start with it.** The allowance is one-off, so existing members keep their "
                "credits; run this again with `apply_now: True` to refill everyone now."
            )
        )
    if update.applied_now and update.next_refill_at is not None:
        lines.append(_("Next refill: {when}.", when=moment(update.next_refill_at)))
    return discord.Embed(title=title, description="\n".join(lines), colour=MODERATOR)


def audit_allowance(actor_id: int, update: AllowanceUpdate) -> str:
    # In the four audit lines: {moderator} is a person and {role} a role, each shown as its name;
    # {credits} an amount ("100 credits"), {period} how often ("per day"); {previous} the old amount
    # (a number) and {previous_period} its period.
    values = {
        "moderator": f"<@{actor_id}>",
        "credits": credit_amount(update.amount),
        "period": _(PER_PERIOD[update.period]),
        "previous": number(update.previous_amount),
        "previous_period": _(PER_PERIOD[update.previous_period]),
    }
    role = f"<@&{update.role_id}>"
    if update.role_id == SERVER_WIDE and update.applied_now:
        # TRANSLATORS: {moderator} is a person, shown as their name; {credits} an amount ("100
        # credits"), {period} how often ("per day"); {previous} the old amount (a number) and
        # {previous_period} its period. The same in the three lines that follow ({role}: a role).
        text = _(
            "{moderator} set the server allowance to {credits} {period} (was {previous} "
            "{previous_period}), applied now",
            **values,
        )
    elif update.role_id == SERVER_WIDE:
        text = _(
            "{moderator} set the server allowance to {credits} {period} (was {previous} "
            "{previous_period}), from the next refill",
            **values,
        )
    elif update.applied_now:
        text = _(
            "{moderator} set the allowance of {role} to {credits} {period} (was {previous} "
            "{previous_period}), applied now",
            role=role,
            **values,
        )
    else:
        text = _(
            "{moderator} set the allowance of {role} to {credits} {period} (was {previous} "
            "{previous_period}), from the next refill",
            role=role,
            **values,
        )
    return audit_line(text)


# The settings a change lists, by name as a moderator reads it (English msgids, translated where
# shown), in the overview's order.
# TRANSLATORS: the name of a server setting, in the list of what a moderator changed ("refill time
# 00:00 UTC → 18:30 UTC").
_REFILL_TIME = N_("refill time")
_JOBS_PER_MEMBER = N_("splits at once per member")
_COOLDOWN = N_("cooldown between splits")
_MODERATOR_ROLE = N_("moderator role")
_AUDIT_CHANNEL = N_("audit channel")
_SHARED_RESULTS = N_("shared results")
_KEEP_IN_DISCORD = N_("keep in Discord")
_MIX_STEMS = N_("mix stems")
_MIX_PRICE = N_("mix price")
_LANGUAGE = N_("language")


def _language_name(code: str | None) -> str:
    """The public messages' language as moderators read it: its name in itself, or the server's
    own Discord language."""
    chosen = known_language(code)
    # TRANSLATORS: the public messages' language when the moderators chose none: the server's own
    # language, as set in Discord.
    return chosen.name if chosen is not None else _("the server's own")


def _setting_values(s: EconomySettings) -> dict[str, str]:
    """Each setting's value as a moderator reads it, by its English name."""
    return {
        _REFILL_TIME: f"{s.refill_time} {s.timezone}",
        # TRANSLATORS: the value of "splits at once per member" when the server has not set its own.
        _JOBS_PER_MEMBER: number(s.jobs_per_member) if s.jobs_per_member else _("the bot's default"),
        _COOLDOWN: duration(s.cooldown_seconds),
        # TRANSLATORS: a setting's value when nothing is set (no moderator role, no audit channel).
        _MODERATOR_ROLE: f"<@&{s.moderator_role_id}>" if s.moderator_role_id else _("none"),
        _AUDIT_CHANNEL: f"<#{s.audit_channel_id}>" if s.audit_channel_id else _("none"),
        _SHARED_RESULTS: _(_REUSE_CHARGE_TEXT[s.reuse_charge]),
        _KEEP_IN_DISCORD: _(_KEEP_STEMS_TEXT[s.keep_stems]),
        _MIX_STEMS: _(_MIX_STEMS_TEXT[s.mix_stems]),
        _MIX_PRICE: credit_amount(s.mix_price) if s.mix_price else _("free"),
        _LANGUAGE: _language_name(s.language),
    }


# English msgids: `_(…[value])` where shown.
_REUSE_CHARGE_TEXT = {
    # TRANSLATORS: what a member pays for stems already split in the server: nothing.
    ReuseCharge.FREE: N_("free"),
    # TRANSLATORS: what a member pays for stems already split in the server: as for a new split.
    ReuseCharge.FULL: N_("full price"),
}

_KEEP_STEMS_TEXT = {
    # TRANSLATORS: the "keep in Discord" setting's values.
    KeepStems.BUTTON: N_("members choose"),
    KeepStems.ALWAYS: N_("always"),
    KeepStems.OFF: N_("off"),
}

_MIX_STEMS_TEXT = {
    # TRANSLATORS: the "mix stems" setting's values.
    MixStems.ON: N_("on"),
    MixStems.OFF: N_("off"),
}

# TRANSLATORS: Discord's names of three channel permissions: use Discord's own wording in your language.
KEEP_STEMS_PERMISSIONS = N_("Create Public Threads, Send Messages in Threads and Attach Files")
"""What StemBot needs in a channel to keep stems there (a thread on the result, files in it); an
English msgid, `_(KEEP_STEMS_PERMISSIONS)` where shown."""

_KEEP_STEMS_EXPLAINED = {
    KeepStems.BUTTON: N_(
        "Members choose: each result has a Keep in Discord button that posts its stems as files in a "
        "thread on the result, where they stay after the links expire."
    ),
    KeepStems.ALWAYS: N_(
        "Always: every successful split is kept in Discord, its stems posted as files in a thread on "
        "the result, where they stay after the links expire."
    ),
}


def _keep_text(s: EconomySettings) -> str:
    if s.keep_stems is KeepStems.OFF:
        return ngettext(
            "Off: no button; stems are links only, which expire after {count} day.",
            "Off: no button; stems are links only, which expire after {count} days.",
            LINK_LIFETIME.days,
        )
    # TRANSLATORS: follows the setting's explanation; {bot} is StemBot, {permissions} the names of
    # Discord permissions ("Create Public Threads, Send Messages in Threads and Attach Files").
    needs = _(
        "{bot} needs {permissions} in the channel.", bot="StemBot", permissions=_(KEEP_STEMS_PERMISSIONS)
    )
    return f"{_(_KEEP_STEMS_EXPLAINED[s.keep_stems])} {needs}"


def _mix_text(s: EconomySettings) -> str:
    if s.mix_stems is MixStems.OFF:
        return _("Off: no Mix stems button, and `/stems mix` is refused.")
    if not s.mix_price:
        # TRANSLATORS: "Mix stems" is the name of the button on a result.
        return _(
            "On, free: each full split has a Mix stems button; any member picks stems to keep and "
            "{bot} posts their mix as one audio file in the result's thread.",
            bot="StemBot",
        )
    # TRANSLATORS: {credits} is an amount ("5 credits"); "Mix stems" the name of the button on a result.
    return _(
        "On, {credits} per mix: each full split has a Mix stems button; any member picks stems to keep "
        "and {bot} posts their mix as one audio file in the result's thread.",
        credits=credit_amount(s.mix_price),
        bot="StemBot",
    )


def _refills_text(s: EconomySettings, next_refill_at: float | None) -> str:
    # TRANSLATORS (the refill lines): {refills} is how often ("every day", "every Monday", "on the
    # 1st of each month", "never"); {time} a time of day (18:30) and {zone} a time zone (Europe/Berlin).
    values = {"refills": _(REFILLS[s.period]), "time": s.refill_time, "zone": s.timezone}
    if s.period is Period.NEVER:
        return _("{refills} (refill time {time}, {zone}, once a period is set)", **values)
    if next_refill_at is None:
        return _("{refills} at {time} ({zone})", **values)
    # TRANSLATORS: {when} is a moment: "in 3 days (12 March 2025 10:00)".
    return _("{refills} at {time} ({zone})\nnext {when}", when=moment(next_refill_at), **values)


def settings_overview(update: SettingsUpdate) -> list[Message]:
    """The server's economy: allowances, refills, limits, who moderates, where actions are logged.
    Many role tiers spill over into further embeds and messages rather than being cut off."""
    overview = update.after
    s = overview.settings
    embed = discord.Embed(
        title=_("Credit settings for this server"), colour=MODERATOR if update.changed else INFO
    )
    if update.changed:
        # TRANSLATORS: {changes} lists what changed: "refill time 00:00 UTC → 18:30 UTC; …".
        embed.description = _("**Changed:** {changes}", changes=_settings_diff(update.before, s))
    embed.add_field(name=_("Allowance"), value=per_period(overview.server_allowance, s.period), inline=False)
    embed.add_field(name=_("Refills"), value=_refills_text(s, overview.next_refill_at), inline=False)
    embed.add_field(
        name=_("Splits at once"),
        value=(
            ngettext("{count} per member", "{count} per member", overview.jobs_per_member)
            if s.jobs_per_member
            else ngettext(
                "{count} per member (bot default)",
                "{count} per member (bot default)",
                overview.jobs_per_member,
            )
        ),
    )
    embed.add_field(name=_("Cooldown"), value=duration(s.cooldown_seconds))
    moderator_role = f"<@&{s.moderator_role_id}>"
    embed.add_field(
        name=_("Moderators"),
        # TRANSLATORS: who moderates: Discord's Manage Server permission, or {role} (a role, shown as
        # its name). Use Discord's own wording for the permission.
        value=_("Manage Server, or {role}", role=moderator_role)
        if s.moderator_role_id
        else _("Manage Server"),
    )
    embed.add_field(
        name=_("Audit channel"), value=f"<#{s.audit_channel_id}>" if s.audit_channel_id else _("none")
    )
    embed.add_field(
        name=_("Shared results"),
        # TRANSLATORS: {charge} is "free" or "full price".
        value=_(
            "{charge}: what a member pays when the same track and mode was already split (or is being "
            "split) here, so no new paid job is needed",
            charge=_(_REUSE_CHARGE_TEXT[s.reuse_charge]),
        ),
        inline=False,
    )
    embed.add_field(name=_("Keep in Discord"), value=_keep_text(s), inline=False)
    embed.add_field(name=_("Mix stems"), value=_mix_text(s), inline=False)
    embed.add_field(
        name=_("Language"),
        # TRANSLATORS: {language} is a language's name in itself ("Deutsch", "日本語"), or "the
        # server's own".
        value=_(
            "{language}: what results, threads and the audit channel say in public here (each "
            "member's own answers speak their Discord language)",
            language=_language_name(s.language),
        ),
        inline=False,
    )
    if overview.budget is not None:
        embed.add_field(
            name=_("Monthly {bot} budget", bot="StemBot"), value=_budget_text(overview.budget), inline=False
        )
    embeds = [embed]
    mentions = {role_id: f"<@&{role_id}>" for role_id, _amount in overview.role_allowances}
    lines = [
        # TRANSLATORS: one line of the role allowances: {role} is a role, {credits} an amount
        # ("100 credits").
        _("{role}: {credits}", role=mentions[role_id], credits=credit_amount(amount))
        for role_id, amount in overview.role_allowances
    ]
    if lines:
        embeds += listing(
            _("Role allowances"),
            lines,
            _("A member gets the highest of the server's allowance and their roles'."),
        )
    return pack(embeds)


def _budget_text(budget: ServerBudget) -> str:
    """The server's monthly budget as its moderators see it: set by the bot's owner, who pays the
    API for every split; counted in the API's credits, not members' credits."""
    if budget.budget is None:
        # TRANSLATORS: {prices} lists what each mode costs: "10 for vocals + instrumental, …".
        return ngettext(
            "No monthly limit from the bot's owner; {count} API credit used this month ({prices}).",
            "No monthly limit from the bot's owner; {count} API credits used this month ({prices}).",
            budget.spent,
            prices=api_price_list(),
        )
    # TRANSLATORS: {left} of {count} API credits; {when} a Discord timestamp read as "in 3 days";
    # {prices} lists what each mode costs: "10 for vocals + instrumental, …".
    return ngettext(
        "**{left}** of {count} API credit left this month; it renews {when}. Each split uses the API's "
        "price ({prices}); shared results use none. When too little is left, new splits are refused "
        "until it renews. Set by the bot's owner.",
        "**{left}** of {count} API credits left this month; it renews {when}. Each split uses the API's "
        "price ({prices}); shared results use none. When too little is left, new splits are refused "
        "until it renews. Set by the bot's owner.",
        budget.budget,
        left=number(budget.left or 0),
        when=timestamp(budget.renews_at, "R"),
        prices=api_price_list(),
    )


def _settings_diff(before: EconomySettings, after: EconomySettings) -> str:
    old, new = _setting_values(before), _setting_values(after)
    # TRANSLATORS: one change in a list of them: {setting} is a setting's name ("refill time"),
    # {old} and {new} its values.
    changes = [
        _("{setting} {old} → {new}", setting=_(name), old=old[name], new=new[name])
        for name in new
        if old[name] != new[name]
    ]
    if not changes:
        # TRANSLATORS: what a moderator changed, when it was nothing.
        return _("nothing")
    return reduce(
        # TRANSLATORS: joins two changes in a list of them: "refill time 00:00 → 18:00; cooldown none
        # → 1 minute" (then that and the next change).
        lambda before, after: pgettext("list of changes", "{before}; {after}", before=before, after=after),
        changes,
    )


def audit_settings(actor_id: int, update: SettingsUpdate) -> str:
    moderator = f"<@{actor_id}>"
    # TRANSLATORS: {moderator} is a person, shown as their name; {changes} lists what changed:
    # "refill time 00:00 UTC → 18:30 UTC; …".
    return audit_line(
        _(
            "{moderator} changed the credit settings: {changes}",
            moderator=moderator,
            changes=_settings_diff(update.before, update.after.settings),
        )
    )
