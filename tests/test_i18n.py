"""The English catalogue: complete, compiled from the current .po, and used
when a reader picks English (cookie or Accept-Language)."""

import ast
import gettext
import re
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parent.parent
PO = ROOT / "locale" / "en" / "LC_MESSAGES" / "django.po"
MO = PO.with_suffix(".mo")
HAN = re.compile(r"[\u4e00-\u9fff]")
PLACEHOLDER = re.compile(r"%\([a-z_]+\)[sd]|\{[a-z_]+\}|%%")


def _unquote(line: str) -> str:
    return ast.literal_eval(line)


def parse_po(path: Path) -> list[dict]:
    """A small .po reader: enough for Django's makemessages output (no polib)."""
    entries, current, key = [], None, None
    for raw in [*path.read_text(encoding="utf-8").split("\n"), ""]:
        line = raw.strip()
        if not line:
            if current is not None:
                entries.append(current)
            current, key = None, None
            continue
        if current is None:
            current = {"flags": set(), "msgctxt": None, "msgid_plural": None, "msgstr": {}}
        if line.startswith("#,"):
            current["flags"].update(flag.strip() for flag in line[2:].split(","))
        elif line.startswith("#"):
            continue
        elif line.startswith('"'):
            if isinstance(key, int):
                current["msgstr"][key] += _unquote(line)
            else:
                current[key] += _unquote(line)
        else:
            word, _, rest = line.partition(" ")
            if word.startswith("msgstr"):
                key = int(word[7:-1]) if "[" in word else 0
                current["msgstr"][key] = _unquote(rest)
            else:
                key = word
                current[key] = _unquote(rest)
    return entries


@pytest.fixture(scope="module")
def po_entries():
    entries = parse_po(PO)
    assert entries[0]["msgid"] == "", "the .po starts with its header"
    return entries[1:]


def test_po_has_no_untranslated_or_fuzzy_entries(po_entries):
    assert len(po_entries) > 500
    fuzzy = [e["msgid"] for e in po_entries if "fuzzy" in e["flags"]]
    empty = [e["msgid"] for e in po_entries if not all(e["msgstr"].values())]
    plurals_short = [e["msgid"] for e in po_entries if e["msgid_plural"] and len(e["msgstr"]) != 2]
    assert fuzzy == []
    assert empty == []
    assert plurals_short == []
    header = parse_po(PO)[0]
    assert "fuzzy" not in header["flags"]
    assert "Language: en" in header["msgstr"][0]


def test_translations_keep_placeholders_and_drop_chinese(po_entries):
    for entry in po_entries:
        wanted = sorted(PLACEHOLDER.findall(entry["msgid"]))
        for text in entry["msgstr"].values():
            assert sorted(PLACEHOLDER.findall(text)) == wanted, (entry["msgid"], text)
            # Payment-status synonyms users may type are the only Chinese kept.
            if "已付款、待付款、已退款" not in entry["msgid"]:
                assert not HAN.search(text), (entry["msgid"], text)


def test_committed_mo_matches_po(po_entries):
    """Every .po entry round-trips through the committed .mo, so the .mo was
    compiled from this .po (a stale .mo would miss or differ on some)."""
    with MO.open("rb") as handle:
        catalog = gettext.GNUTranslations(handle)
    stale = []
    for entry in po_entries:
        msgid, ctx = entry["msgid"], entry["msgctxt"]
        if entry["msgid_plural"]:
            got = [catalog.ngettext(msgid, entry["msgid_plural"], n) for n in (1, 2)]
            want = [entry["msgstr"][0], entry["msgstr"][1]]
        elif ctx:
            got, want = catalog.pgettext(ctx, msgid), entry["msgstr"][0]
        else:
            got, want = catalog.gettext(msgid), entry["msgstr"][0]
        if got != want:
            stale.append(msgid)
    assert stale == [], "run `manage.py compilemessages` and commit django.mo"
    assert catalog.gettext("請求看板") == "Request board"
    assert catalog.gettext("欄位不符") == "Schema failed"
    assert catalog.ngettext("%(n)s 筆錯誤", "%(n)s 筆錯誤", 3) == "%(n)s errors"


def _source_literals():
    """zh-Hant literals passed straight to gettext in Python or to
    {% translate %} in templates: each must have a catalogue entry."""
    funcs = {"_", "gettext", "gettext_lazy", "ngettext", "ngettext_lazy", "pgettext"}
    for path in (ROOT / "reconciliation").rglob("*.py"):
        if "migrations" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and getattr(node.func, "id", getattr(node.func, "attr", None)) in funcs
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
                and HAN.search(node.args[0].value)
            ):
                yield path, node.args[0].value
    tag = re.compile(r"""{%\s*(?:translate|trans)\s+(?:"([^"]*)"|'([^']*)')""")
    for path in (ROOT / "templates").rglob("*.html"):
        for match in tag.finditer(path.read_text(encoding="utf-8")):
            text = match.group(1) if match.group(1) is not None else match.group(2)
            if HAN.search(text):
                # Templates double % so the catalogue key is python-format safe.
                yield path, text.replace("%", "%%")


def test_every_translatable_literal_is_in_the_catalogue(po_entries):
    known = {e["msgid"] for e in po_entries}
    missing = sorted(
        {f"{p.relative_to(ROOT)}: {text}" for p, text in _source_literals() if text not in known}
    )
    assert missing == [], "run makemessages -l en and translate the new strings"


def test_board_in_english_with_language_cookie(client, louis):
    assert settings.LANGUAGE_COOKIE_NAME == "django_language"
    client.force_login(louis)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    page = client.get("/").content.decode()
    assert '<html lang="en">' in page
    assert "Request board" in page
    assert "Create P0 data request" in page
    assert "revenue stays unverified" in page
    assert "請求看板" not in page
    assert 'data-testid="lang-switch">繁體中文<' in page


def test_scorecard_in_english_with_accept_language(client, louis):
    client.force_login(louis)
    page = client.get("/scorecard/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Scorecard" in page
    assert "Revenue unverified." in page
    assert "對帳成績單" not in page


def test_zh_hant_stays_the_default(client, louis):
    client.force_login(louis)
    page = client.get("/").content.decode()
    assert '<html lang="zh-Hant">' in page
    assert "請求看板" in page
    assert "Request board" not in page


def test_language_switch_sets_the_cookie(client, louis):
    client.force_login(louis)
    response = client.post("/i18n/setlang/", {"language": "en", "next": "/scorecard/"})
    assert response.status_code == 302 and response["Location"] == "/scorecard/"
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "en"
    assert "Scorecard" in client.get("/scorecard/").content.decode()
