"""The native stack's Prometheus configuration: the compose file's jobs, on our ports."""
from __future__ import annotations

from pathlib import Path

import yaml

from chaos.layout import SERVICES, StackLayout

REPO = Path(__file__).resolve().parent.parent
SCRAPE_INTERVAL = {"training": "15s", "ci": "1s"}
EVALUATION_INTERVAL = {"training": "15s", "ci": "1s"}


def write(layout: StackLayout) -> Path:
    config = {
        "global": {"scrape_interval": SCRAPE_INTERVAL[layout.profile],
                   "evaluation_interval": EVALUATION_INTERVAL[layout.profile],
                   "external_labels": {"stack": "chaoslab-native"}},
        "rule_files": [str(p) for p in sorted((REPO / "prometheus" / "rules").glob("*.yml"))],
        "scrape_configs": [
            {"job_name": service,
             "static_configs": [{"targets": [f"127.0.0.1:{layout.ports[service]}"],
                                 "labels": {"service": service}}]}
            for service in SERVICES
        ] + [{"job_name": "prometheus",
              "static_configs": [{"targets": [f"127.0.0.1:{layout.ports['prometheus']}"]}]}],
    }
    path = layout.run_dir / "prometheus.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path
