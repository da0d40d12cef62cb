"""The human view of pe-inspect, rendered with rich.

Built for reading at a glance: permissions coloured (write yellow, execute green, both red),
problems marked with the rule that found them, digests and verdicts in one place.
"""

from __future__ import annotations

from typing import IO, TYPE_CHECKING, Any, Final

from rich.console import Console, Group, RenderableType
from rich.padding import Padding
from rich.rule import Rule
from rich.text import Text

from fwtools._base.severity import RANK, Severity
from fwtools.report.jsonable import to_jsonable
from fwtools.report.outline import brief, outline_lines

if TYPE_CHECKING:
    from fwtools.crypto.authenticode import AuthenticodeSignature
    from fwtools.crypto.x509info import CertificateInfo
    from fwtools.formats.pe.image import Section
    from fwtools.formats.pe.special import SpecialSection
    from fwtools.policy.findings import Finding
    from fwtools.policy.pe_facts import FileResult, PeFacts

SEVERITY_STYLE: Final[dict[Severity, tuple[str, str]]] = {
    "error": ("✗", "bold red"), "warning": ("!", "yellow"), "note": ("·", "dim"),
}
STATUS_STYLE = {"trusted": "bold green", "untrusted": "bold red", "revoked": "bold red"}


def make_console(stream: IO[str] | None, color: bool | None) -> Console:
    # emoji=False: a ":name:" in a file name or certificate subject is data, not an emoji
    # code; and rich's emoji table (about 7 ms to import) is never loaded.
    return Console(
        file=stream,
        force_terminal=color,
        no_color=color is False,
        highlight=False,
        emoji=False,
        soft_wrap=False,
        width=None if stream is None else 120,
    )


def _columns(rows: list[list[Text | str]], justify: str = "", gap: int = 2,
             styles: tuple[str, ...] = (), crop: bool = False) -> Text:
    """``rows`` laid out in aligned columns as one Text (``justify``: one ``l``/``r`` per
    column; ``styles``: a default style per column; ``crop``: a line wider than the console
    ends in an ellipsis instead of wrapping). What a rich Table with no box draws, at a
    fraction of its cost: a Table measures and wraps every cell, several times over."""
    cells = [[c if isinstance(c, Text) else Text(c) for c in row] for row in rows]
    ncols = max((len(r) for r in cells), default=0)
    widths = [max((r[i].cell_len for r in cells if i < len(r)), default=0) for i in range(ncols)]
    out = Text(no_wrap=True, overflow="ellipsis") if crop else Text()
    for n, row in enumerate(cells):
        if n:
            out.append("\n")
        for i, cell in enumerate(row):
            if i:
                out.append(" " * gap)
            pad = " " * (widths[i] - cell.cell_len)
            if i < len(styles) and styles[i] and not cell.style and not cell.spans:
                cell = Text(cell.plain, style=styles[i])
            right = i < len(justify) and justify[i] == "r"
            if right:
                out.append(pad)
            out.append_text(cell)
            if not right and i < len(row) - 1:
                out.append(pad)
    return out


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


def _yes_no(value: bool | None, good: bool = True) -> Text:
    if value is None:
        return Text("n/a", style="dim")
    ok = value is good
    return Text("yes" if value else "no", style="green" if ok else "red")


def _perms(s: Section) -> Text:
    text = Text()
    text.append("r" if s.read else "-", style="cyan" if s.read else "dim")
    text.append("w" if s.write else "-", style="yellow" if s.write else "dim")
    text.append("x" if s.execute else "-", style="green" if s.execute else "dim")
    if s.write and s.execute:
        text.stylize("bold white on red")
    return text


def _header(facts: PeFacts) -> Text:
    img = facts.image
    grid: list[list[Text | str]] = []
    grid.append([
        "Image",
        f"{'PE32+' if img.is_pe32_plus else 'PE32'} {img.machine_name}, "
        f"{img.subsystem_name}, {_size(facts.size)}",
    ])
    grid.append([
        "Layout",
        f"ImageBase {img.image_base:#x}  Entry {img.entry_point:#x}  "
        f"SizeOfImage {img.size_of_image:#x}  SizeOfHeaders {img.size_of_headers:#x}",
    ])
    align_style = "green" if img.section_alignment >= 4096 else "red"
    grid.append([
        "Alignment",
        Text.assemble(
            ("SectionAlignment ", ""), (f"{img.section_alignment:#x}", align_style),
            (f"  FileAlignment {img.file_alignment:#x}", ""),
        ),
    ])
    nx = Text("NX_COMPAT ", style="bold")
    nx.append("set" if img.nx_compat else "not set", style="green" if img.nx_compat else "red")
    others = [n for n in img.dll_characteristic_names if n != "NX_COMPAT"]
    if others:
        nx.append("  " + " ".join(others), style="dim")
    grid.append(["DllCharacteristics", Text.assemble(f"{img.dll_characteristics:#06x}  ", nx)])
    grid.append(["Relocations", _yes_no(img.has_relocations)])
    checksum = facts.computed_checksum
    ck = Text(f"{img.checksum:#x}")
    if checksum is not None:
        if img.checksum and img.checksum != checksum:
            ck.append(f" (computed {checksum:#x})", style="yellow")
        else:
            ck.append(" (matches)" if img.checksum else f" (computed {checksum:#x})",
                      style="green" if img.checksum else "dim")
    grid.append(["CheckSum", ck])
    for alg, digest in facts.digests.items():
        grid.append([f"Authenticode {alg}", digest.hex()])
    return _columns(grid, styles=("bold",))


def _sections(facts: PeFacts) -> Text:
    head = ["#", "name", "virtual", "vsize", "raw", "rsize", "perm", "page", "flags"]
    rows: list[list[Text | str]] = [[Text(h, style="bold") for h in head]]
    for s in facts.image.sections:
        rows.append([
            str(s.index),
            Text(s.name, style="bold"),
            f"{s.virtual_address:#010x}",
            f"{s.virtual_size:#x}",
            f"{s.raw_offset:#010x}",
            f"{s.raw_size:#x}",
            _perms(s),
            Text("✓", style="green") if s.is_page_aligned() else Text("✗", style="red"),
            Text(" ".join(n for n in s.characteristic_names if not n.startswith("MEM_")),
                 style="dim"),
        ])
    return _columns(rows, justify="rllrlrlll", crop=True)


def _sbat_level_line(label: str, level: Any) -> Text:
    gens = " ".join(f"{e.component},{e.generation}" for e in level.entries)
    return Text.assemble(f"  {label:<10}", (level.datestamp, "bold"), f"  {gens}")


def _subject(der: bytes) -> str:
    from fwtools.crypto.x509info import certificate_info
    from fwtools.errors import FwError

    try:
        return certificate_info(der).subject
    except FwError as exc:
        return f"unparsable certificate ({exc})"


def _lists_line(label: str, lists: Any) -> Text:
    from collections import Counter

    counts = Counter(sl.type_name for sl in lists)
    total = ", ".join(f"{n} x {name}" for name, n in counts.items())
    entries = sum(len(sl.entries) for sl in lists)
    plural = "list" if len(lists) == 1 else "lists"
    return Text(f"  {label:<10}{entries} entries in {len(lists)} {plural} ({total})")


def _special_body(sect: SpecialSection) -> list[RenderableType]:
    d: Any = sect.decoded
    if sect.kind == "sbat":
        rows: list[list[Text | str]] = [[Text(h, style="dim") for h in (
            "component", "gen", "vendor", "package", "version", "url")]]
        rows += [[row.component, str(row.generation), row.vendor_name,
                  row.vendor_package_name, row.vendor_version, row.vendor_url]
                 for row in d.rows]
        return [Padding(_columns(rows, crop=True), (0, 0, 0, 3))]
    if sect.kind == "sbatlevel":
        return [_sbat_level_line("automatic", d.automatic), _sbat_level_line("latest", d.latest)]
    if sect.kind == "ident":
        return [Text.assemble(
            "  ", (f"{d.title} {d.version or '?'}", "bold"),
            f"  commit {d.commit or '?'}  built on {d.build_machine or '?'}",
        )]
    if sect.kind == "vendor_cert":
        out: list[RenderableType] = []
        for der in d.certificates:
            out.append(Text.assemble("  cert      ", (_subject(der), "bold cyan")))
        if d.db_lists:
            out.append(_lists_line("db", d.db_lists))
        if d.dbx_lists:
            out.append(_lists_line("dbx", d.dbx_lists))
        return out or [Text("  empty", style="dim")]
    return [Text("\n".join(outline_lines(brief(to_jsonable(d)), "  ")))]


def _special(sect: SpecialSection) -> RenderableType:
    head = Text.assemble(
        (sect.name, "bold magenta"), f"  {sect.size} bytes at {sect.offset:#x}",
        ("  sha256 " + sect.sha256[:16] + "…", "dim"),
    )
    parts: list[RenderableType] = [head]
    if sect.error:
        parts.append(Text("  ✗ " + sect.error, style="red"))
    if sect.decoded is not None:
        parts.extend(_special_body(sect))
    return Group(*parts)


def _cert_line(cert: CertificateInfo, indent: str = "    ") -> Text:
    return Text.assemble(
        indent, (cert.subject, "bold"), ("  issued by ", "dim"), cert.issuer,
        (f"  {cert.key_type}, serial {cert.serial}, {cert.not_before[:10]}..{cert.not_after[:10]}",
         "dim"),
    )


def _signature(sig: AuthenticodeSignature, verbose: bool, indent: str = "") -> list[RenderableType]:
    out: list[RenderableType] = []
    title = Text(f"{indent}[{sig.index}] ", style="bold")
    if sig.error:
        out.append(title + Text(sig.error, style="red"))
        return out
    signer = (
        sig.signer.subject
        if sig.signer
        else f"issuer {sig.signer_issuer} serial {sig.signer_serial}"
    )
    title.append(signer, style="bold cyan")
    out.append(title)
    digest = Text(f"{indent}    {sig.digest_algorithm} ")
    digest.append(sig.signed_digest.hex() if sig.signed_digest else "-", style="dim")
    if sig.digest_matches is True:
        digest.append("  ✓ matches the image", style="green")
    elif sig.digest_matches is False:
        digest.append("  ✗ does NOT match the image", style="bold red")
    out.append(digest)
    if sig.signature_valid is None:
        out.append(Text(
            f"{indent}    PKCS#7 signature not checked (--check-signatures or --verify)",
            style="dim",
        ))
    else:
        out.append(Text(
            f"{indent}    PKCS#7 signature "
            + ("valid" if sig.signature_valid else "INVALID"),
            style="green" if sig.signature_valid else "bold red",
        ))
    certs = sig.certificates if verbose else sig.certificates[:0]
    if sig.signer and not verbose:
        c = sig.signer
        out.append(Text(
            f"{indent}    issued by {c.issuer}; {c.key_type}, serial {c.serial}, "
            f"valid {c.not_before[:10]}..{c.not_after[:10]}", style="dim",
        ))
    for cert in certs:
        out.append(_cert_line(cert, indent + "    cert: "))
    for nested in sig.nested:
        out.extend(_signature(nested, verbose, indent + "    nested "))
    return out


def _finding(f: Finding) -> Text:
    mark, style = SEVERITY_STYLE[f.severity]
    text = Text(f" {mark} ", style=style)
    text.append(f"{f.rule}", style=style)
    text.append(f"  {f.message}")
    if f.location:
        text.append(f"  [{f.location}" + (f" @ {f.offset:#x}" if f.offset is not None else "")
                    + "]", style="dim")
    return text


def render_facts(facts: PeFacts, verbose: bool = False) -> list[RenderableType]:
    parts: list[RenderableType] = [_header(facts), Text(""), Text("Sections", style="bold"),
                                   _sections(facts)]
    if facts.special:
        parts += [Text(""), Text("Special sections", style="bold")]
        parts += [_special(s) for s in facts.special]
    if facts.kernel is not None:
        parts += [Text(""), Text("Kernel", style="bold")]
        # One Text for the whole outline: rich's cost is per renderable, not per line.
        parts.append(Text("\n".join(outline_lines(facts.kernel, "  "))))
    parts += [Text(""), Text(f"Signatures ({len(facts.signatures)})", style="bold")]
    for sig in facts.signatures:
        parts += _signature(sig, verbose, "  ")
    if facts.verification is not None:
        v = facts.verification
        line = Text("Verification  ", style="bold")
        line.append(v.status.upper(), style=STATUS_STYLE.get(v.status, "bold"))
        line.append(f"  {v.reason}")
        parts += [Text(""), line]
        for cert in v.chain:
            parts.append(_cert_line(cert, "    chain: "))
    for name, inner in facts.embedded.items():
        parts += [Text(""), Rule(f"{facts.path} {name}", style="magenta", align="left")]
        if isinstance(inner, str):
            parts.append(Text("✗ " + inner, style="red"))
        else:
            parts += [Padding(Group(*render_facts(inner, verbose)), (0, 0, 0, 2))]
    if facts.findings:
        parts += [Text(""), Text("Verdicts", style="bold")]
        parts += [_finding(f) for f in sorted(facts.findings, key=lambda f: -RANK[f.severity])]
    return parts


def _fits(line: str, width: int) -> bool:
    """Whether rich would leave ``line`` whole at ``width`` cells (no wrap, no crop)."""
    from rich.cells import cell_len

    # A cell is at most two wide, so a short line needs no measuring. Tabs, which rich
    # expands, count as not fitting.
    return "\t" not in line and (len(line) <= width // 2 or cell_len(line) <= width)


def _print(console: Console, renderable: RenderableType, width: int | None) -> None:
    """``console.print(renderable)``. ``width``: the console's, given when it draws no styles
    (no terminal, no forced colour). Then each line of a Text that fits the width is exactly
    its plain text (rich wraps and crops line by line), and a left Padding of a Text adds
    spaces on the left and, as rich pads a padded block, up to the width on the right; those
    are written directly, skipping rich's per-line wrapping and segmenting (most of
    pe-inspect's rendering time). A line that does not fit, and anything else, goes to rich.
    """
    if width is None:
        console.print(renderable)
        return
    write = console.file.write
    if isinstance(renderable, Group):
        for part in renderable.renderables:
            _print(console, part, width)
    elif isinstance(renderable, Text) and renderable.end == "\n":
        for line in renderable.plain.split("\n"):
            if _fits(line, width):
                write(line + "\n")
            else:
                # In a Group, as the report prints it: console.print joins bare Texts and
                # draws them with its own overflow and wrapping, not theirs.
                console.print(Group(Text(line, justify=renderable.justify,
                                         overflow=renderable.overflow,
                                         no_wrap=renderable.no_wrap)))
    elif (isinstance(renderable, Padding) and isinstance(renderable.renderable, Text)
          and renderable.renderable.end == "\n" and renderable.left < width
          and not (renderable.top or renderable.right or renderable.bottom)):
        from rich.cells import cell_len

        inner = width - renderable.left
        lines = renderable.renderable.plain.split("\n")
        if not all(_fits(line, inner) for line in lines):
            console.print(renderable)
            return
        pad = " " * renderable.left
        write("".join(pad + line + " " * (inner - cell_len(line)) + "\n" for line in lines))
    else:
        console.print(renderable)


def render_inspection(
    results: list[FileResult], stream: IO[str] | None = None, *, verbose: bool = False,
    color: bool | None = None, fast: bool = True,
) -> None:
    """Print the report of each readable file (``fast``: see :func:`_print`; tests turn it
    off to compare with rich's own rendering)."""
    console = make_console(stream, color)
    # (console.width is measured again on every access)
    plain_width = console.width if fast and console.color_system is None else None
    # Unreadable files are reported on stderr by the command, one line each.
    for r in results:
        if r.facts is None:
            continue
        console.print(Rule(Text(r.path, style="bold"), align="left"))
        _print(console, Group(*render_facts(r.facts, verbose)), plain_width)
        console.print()
    if len(results) > 1:
        bad = sum(1 for r in results if r.facts is None)
        console.print(Text(f"{len(results)} files, {bad} unreadable", style="bold"))
