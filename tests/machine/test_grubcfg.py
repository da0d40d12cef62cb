"""GRUB configuration reading: words, set default, menu paths, submenus."""

from __future__ import annotations

from vm_builder import ROOT_UUID, main_grub_cfg

from fwtools.machine.grubcfg import default_entry, parse_grub_cfg, split_words


def test_split_words_quotes_and_variables() -> None:
    v = {"root": "hd0,gpt2"}
    assert split_words("set prefix=($root)'/boot/grub'", v) == \
        ["set", "prefix=(hd0,gpt2)/boot/grub"]
    assert split_words('linux\t"/boot/a b" ro # comment', v) == ["linux", "/boot/a b", "ro"]
    assert split_words("echo ${root}x \\$root", v) == ["echo", "hd0,gpt2x", "$root"]


def test_grub_mkconfig_shape_default_entry() -> None:
    cfg = parse_grub_cfg(main_grub_cfg("vmlinuz-6.12.1-amd64"))
    assert cfg.default == "0"
    assert any("next_entry" in n for n in cfg.notes)
    entry, how = default_entry(cfg)
    assert entry is not None and entry.title == "Debian GNU/Linux"
    assert entry.entry_id == f"gnulinux-simple-{ROOT_UUID}"
    assert ["linux", "/boot/vmlinuz-6.12.1-amd64", f"root=UUID={ROOT_UUID}", "ro", "quiet",
            "console=ttyS0"] \
        in entry.lines
    assert how == "default='0'"


def test_default_by_submenu_path_id_and_title() -> None:
    text = main_grub_cfg("vmlinuz-6.1")
    for spec in ("1>0", f"gnulinux-advanced-{ROOT_UUID}>gnulinux-6.1-recovery-{ROOT_UUID}",
                 "Advanced options for Debian GNU/Linux>"
                 "Debian GNU/Linux, with Linux 6.1 (recovery mode)"):
        cfg = parse_grub_cfg(text.replace('set default="0"', f'set default="{spec}"'))
        entry, _how = default_entry(cfg)
        assert entry is not None and "recovery" in entry.title, spec


def test_default_naming_nothing_falls_back_to_entry_0() -> None:
    cfg = parse_grub_cfg("set default=7\nmenuentry 'a' {\nlinux /a\n}\n")
    entry, how = default_entry(cfg)
    assert entry is not None and entry.title == "a" and "falls back" in how


def test_no_menu() -> None:
    entry, _how = default_entry(parse_grub_cfg("configfile /x\n"))
    assert entry is None
