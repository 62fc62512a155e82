# The example of docs/python.md runs as written.
import re

from conftest import ROOT


def test_python_md_example_runs(tmp_path, monkeypatch, capsys):
    text = (ROOT / "docs" / "python.md").read_text()
    blocks = re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)
    assert len(blocks) == 1, "docs/python.md should hold one python example"
    monkeypatch.chdir(tmp_path)
    exec(compile(blocks[0], "docs/python.md", "exec"), {"__name__": "docs_example"})
    out = capsys.readouterr().out
    assert "<sat.Model mlp" in out and "sat.Error: N:M 2:8 along K" in out
