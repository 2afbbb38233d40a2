"""manifests/ is rendered from the chart by hack/render-manifests.sh: one source."""

from __future__ import annotations

import difflib

from .helmkube import REPO


def test_committed_manifests_match_the_chart(tools, tmp_path) -> None:
    tools.run(["bash", str(REPO / "hack" / "render-manifests.sh"), str(tmp_path)])
    rendered = sorted(p.name for p in tmp_path.glob("*.yaml"))
    assert rendered == ["modeldeploy-namespaced.yaml", "modeldeploy.yaml"]
    stale = []
    for name in rendered:
        committed = REPO / "manifests" / name
        want = (tmp_path / name).read_text()
        have = committed.read_text() if committed.exists() else ""
        if have != want:
            diff = difflib.unified_diff(have.splitlines(), want.splitlines(), f"manifests/{name}", "rendered", lineterm="")
            stale.append("\n".join(list(diff)[:40]))
    assert not stale, "manifests/ is stale: run hack/render-manifests.sh\n" + "\n\n".join(stale)
