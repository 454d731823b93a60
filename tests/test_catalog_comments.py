"""What translators read beside each message: the `# TRANSLATORS:` comments of the code reach the
catalog template, so an ambiguous word ("Bass", "Split") or a placeholder says what it is."""

from __future__ import annotations

from tools import catalogs


def test_a_translators_comment_in_the_code_reaches_the_catalog_template():
    template = catalogs.template()

    bass = template.get("Bass")
    field = template.get("Split", context="field")
    assert bass is not None and field is not None
    assert bass.auto_comments == ["TRANSLATORS: the bass (guitar or synth bass), as a stem."]
    assert field.auto_comments == [
        "TRANSLATORS: a field's name: the separation mode chosen (\"Full split (up to 12 stems)\")."
    ]
