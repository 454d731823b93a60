"""Everything people read, as Discord embeds, kept within Discord's size limits: one module per
feature (`results` for splits, `quota` for credits and `/quota`, `operators` for the operator's
view) over the helpers they share (`common`). Wording lives here; figures come from
`bot.product` and the data handed in. The Discord side (cogs, the client, delivery, alerts)
sends what these return.
"""
