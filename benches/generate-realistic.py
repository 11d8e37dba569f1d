#!/usr/bin/env python3
"""Write the realistic `check` scale input: objects of real charts and operators' examples
(tests/fixtures/third-party and tests/fixtures/real-world, rendered or reduced from upstream;
licenses in their READMEs) copied and renamed until N objects (default 20,000), spread over ten
PHI namespaces, with the labels, containers, env entries and ConfigMaps those charts carry
(helm labels, probes, init containers, a FHIR server with 14 env entries, Redis with a 190-line
ConfigMap). Each copy renames every object, every label value and every reference to another
object of its chart (claims, Services, ConfigMaps, Secrets), and adds a few varied labels.

    python3 benches/generate-realistic.py OUT_DIR [N]
    /usr/bin/time -v target/release/phi-guard check -f OUT_DIR/objects.yaml \\
        --cluster-state OUT_DIR/state.yaml -o json > /dev/null

Writes OUT_DIR/objects.yaml (the N objects, one YAML stream) and OUT_DIR/state.yaml (the ten
PHI namespaces and an encrypting default StorageClass).
"""
import os
import sys

import yaml

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures")
SOURCES = [
    "third-party/hapi-fhir-jpaserver/rendered.yaml",
    "third-party/groundhog2k/postgres.yaml",
    "third-party/groundhog2k/mariadb.yaml",
    "third-party/groundhog2k/redis.yaml",
    "real-world/operators/cnpg.yaml",
    "real-world/operators/strimzi.yaml",
    "real-world/operators/eck.yaml",
    "real-world/operators/mariadb.yaml",
]
NAMESPACES = 10


def load():
    docs = []
    for rel in SOURCES:
        with open(os.path.join(ROOT, rel)) as f:
            for d in yaml.safe_load_all(f):
                if isinstance(d, dict) and d.get("kind"):
                    d.get("metadata", {}).pop("namespace", None)
                    docs.append(d)
    return docs


def names_of(docs):
    """Every object name and label value of the sources: what a copy renames."""
    names = set()
    for d in docs:
        meta = d.get("metadata", {})
        if meta.get("name"):
            names.add(meta["name"])
        for v in (meta.get("labels") or {}).values():
            if isinstance(v, str) and not v.startswith("phi") and v not in ("Helm", "true"):
                names.add(v)
    return names


def rename(node, names, suffix):
    if isinstance(node, dict):
        return {k: rename(v, names, suffix) for k, v in node.items()}
    if isinstance(node, list):
        return [rename(v, names, suffix) for v in node]
    if isinstance(node, str) and node in names:
        return f"{node}-{suffix}"
    return node


def main():
    out_dir = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 20000
    docs = load()
    names = names_of(docs)
    os.makedirs(out_dir, exist_ok=True)
    written = 0
    copy = 0
    with open(os.path.join(out_dir, "objects.yaml"), "w") as out:
        while written < n:
            ns = f"clinic-{copy % NAMESPACES}"
            for d in docs:
                if written >= n:
                    break
                c = rename(d, names, copy)
                meta = c.setdefault("metadata", {})
                meta["namespace"] = ns
                labels = meta.setdefault("labels", {}) or {}
                labels["team"] = f"team-{copy % 37}"
                labels["cost-center"] = f"cc-{copy % 11}"
                meta["labels"] = labels
                out.write("---\n")
                yaml.safe_dump(c, out, sort_keys=False, default_flow_style=False)
                written += 1
            copy += 1
    with open(os.path.join(out_dir, "state.yaml"), "w") as out:
        for i in range(NAMESPACES):
            out.write(
                f"---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: clinic-{i}\n"
                "  labels:\n    phiguard.io/data-classification: phi\n"
            )
        out.write(
            "---\napiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata:\n"
            "  name: encrypted\n  annotations:\n"
            '    storageclass.kubernetes.io/is-default-class: "true"\n'
            'provisioner: ebs.csi.aws.com\nparameters:\n  encrypted: "true"\n'
        )


main()
