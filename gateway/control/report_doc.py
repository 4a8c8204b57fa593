"""A small document model for compliance reports, rendered to Markdown and to one self-contained HTML page.

A report is built once as blocks (headings, paragraphs, tables, an image) and written twice, so the Markdown and
the HTML cannot say different things. A figure taken from the journal is a `Fig`: its value and the query that
produced it, shown as `[Qn]` next to the value and listed in full at the end ("How each figure was counted").
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union


@dataclass(frozen=True, slots=True)
class Fig:
    value: Any
    ref: str  # "Q7": the query in the appendix

    def text(self) -> str:
        return _fmt(self.value)


Cell = Union[str, int, float, None, Fig]


@dataclass
class Query:
    ref: str
    label: str
    source: str  # the database file it ran on
    sql: str  # with the day's bounds written in, so it can be pasted into sqlite3


@dataclass
class Doc:
    title: str
    blocks: list[tuple[Any, ...]] = field(default_factory=list)
    queries: list[Query] = field(default_factory=list)

    def h(self, level: int, text: str) -> None:
        self.blocks.append(("h", level, text))

    def p(self, text: str) -> None:
        self.blocks.append(("p", text))

    def table(self, headers: list[str], rows: list[list[Cell]], empty: str = "none") -> None:
        self.blocks.append(("table", headers, rows, empty))

    def image(self, path: Path, alt: str) -> None:
        self.blocks.append(("img", path, alt))

    def query(self, label: str, source: str, sql: str) -> str:
        ref = f"Q{len(self.queries) + 1}"
        self.queries.append(Query(ref, label, source, sql))
        return ref

    # ------------------------------------------------------------------ Markdown
    def markdown(self) -> str:
        out = [f"# {self.title}", ""]
        for b in self.blocks:
            if b[0] == "h":
                out += ["#" * (b[1] + 1) + " " + b[2], ""]
            elif b[0] == "p":
                out += [b[1], ""]
            elif b[0] == "table":
                _, headers, rows, empty = b
                if not rows:
                    out += [f"_{empty}_", ""]
                    continue
                out.append("| " + " | ".join(headers) + " |")
                out.append("|" + "---|" * len(headers))
                out += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
                out.append("")
            elif b[0] == "img":
                out += [f"![{b[2]}]({b[1].name})", ""]
        out += ["## How each figure was counted", "",
                "Each `[Qn]` above is the count or sum this query returns, run read-only on the named file.", ""]
        for q in self.queries:
            out += [f"**{q.ref}** {q.label} (`{q.source}`)", "", "```sql", q.sql, "```", ""]
        return "\n".join(out)

    # ------------------------------------------------------------------ HTML
    def html(self) -> str:
        e = html.escape
        out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">', f"<title>{e(self.title)}</title>",
               f"<style>{_CSS}</style></head><body>", f"<h1>{e(self.title)}</h1>"]
        for b in self.blocks:
            if b[0] == "h":
                out.append(f"<h{b[1] + 1}>{e(b[2])}</h{b[1] + 1}>")
            elif b[0] == "p":
                out.append(f"<p>{_inline(b[1])}</p>")
            elif b[0] == "table":
                _, headers, rows, empty = b
                if not rows:
                    out.append(f'<p class="empty">{e(empty)}</p>')
                    continue
                out.append("<table><thead><tr>" + "".join(f"<th>{e(h)}</th>" for h in headers) + "</tr></thead><tbody>")
                for row in rows:
                    out.append("<tr>" + "".join(_html_cell(c) for c in row) + "</tr>")
                out.append("</tbody></table>")
            elif b[0] == "img":
                data = base64.b64encode(b[1].read_bytes()).decode()
                out.append(f'<figure><img alt="{e(b[2])}" src="data:image/png;base64,{data}"></figure>')
        out.append("<h2>How each figure was counted</h2><p>Each <span class=\"q\">Qn</span> above is the count or "
                   "sum this query returns, run read-only on the named file.</p>")
        for q in self.queries:
            out.append(f'<div class="query" id="{q.ref.lower()}"><b>{q.ref}</b> {e(q.label)} '
                       f"(<code>{e(q.source)}</code>)<pre>{e(q.sql)}</pre></div>")
        out.append("</body></html>")
        return "\n".join(out)


def _fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:,.2f}".rstrip("0").rstrip(".") if abs(v) >= 1000 else f"{v:g}"
    return str(v)


def _md_cell(c: Cell) -> str:
    if isinstance(c, Fig):
        return f"{c.text()} [{c.ref}]"
    return _fmt(c).replace("|", "\\|").replace("\n", " ")


def _html_cell(c: Cell) -> str:
    if isinstance(c, Fig):
        return f'<td class="n">{html.escape(c.text())} <a class="q" href="#{c.ref.lower()}">{c.ref}</a></td>'
    num = isinstance(c, (int, float)) and not isinstance(c, bool)
    return f'<td{" class=n" if num else ""}>{_inline(_fmt(c))}</td>'


def _inline(text: str) -> str:
    """`code` spans and [Qn] references of a Markdown paragraph, as HTML."""
    import re

    t = html.escape(text)
    t = re.sub(r"`([^`]+)`", r"<code>\1</code>", t)
    t = re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", t)
    return re.sub(r"\[(Q\d+)\]", lambda m: f'<a class="q" href="#{m.group(1).lower()}">{m.group(1)}</a>', t)


_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:2em auto;max-width:70em;color:#1b1f23;
padding:0 1em}
h1{font-size:1.6em;border-bottom:2px solid #24292e;padding-bottom:.3em}h2{font-size:1.25em;margin-top:1.8em;
border-bottom:1px solid #d0d7de;padding-bottom:.2em}h3{font-size:1.05em}
table{border-collapse:collapse;margin:.6em 0 1.2em;font-size:13px}th,td{border:1px solid #d0d7de;padding:3px 8px;
text-align:left;vertical-align:top}th{background:#f3f5f7}td:first-child{white-space:nowrap}td.n{text-align:right;white-space:nowrap}
tbody tr:nth-child(even){background:#fafbfc}code{background:#f3f5f7;padding:0 3px;border-radius:3px}
a.q{font-size:10px;color:#0969da;text-decoration:none;vertical-align:super}.empty{color:#57606a;font-style:italic}
figure{margin:1em 0}img{max-width:100%;border:1px solid #d0d7de}
.query{margin:.4em 0}.query pre{background:#f6f8fa;padding:.5em;overflow-x:auto;margin:.2em 0 .8em;font-size:12px}
"""
