mod streaming_tests {
    use super::super::*;

    #[test]
    fn load_paths_streams_documents_lists_and_policies_into_the_state() {
        let dir = tempfile::tempdir().expect("tempdir");
        let text = r#"
apiVersion: v1
kind: Namespace
metadata: {name: payments, labels: {phiguard.io/data-classification: phi}}
---
apiVersion: v1
kind: List
items:
- {apiVersion: storage.k8s.io/v1, kind: StorageClass, metadata: {name: gp3}, provisioner: ebs.csi.aws.com, parameters: {Encrypted: "true"}}
- {apiVersion: networking.k8s.io/v1, kind: NetworkPolicy, metadata: {name: deny, namespace: payments}, spec: {podSelector: {}, policyTypes: [Ingress, Egress]}}
---
apiVersion: phiguard.io/v1alpha1
kind: PhiPolicy
metadata: {name: strict}
spec: {mode: Warn}
"#;
        std::fs::write(dir.path().join("state.yaml"), text).expect("write");
        std::fs::write(dir.path().join("ignored.txt"), "not yaml: [").expect("write");
        let state = ClusterState::new();
        let policies = load_paths(
            &[dir.path().to_path_buf()],
            &state,
            DEFAULT_MAX_FILE_MIB * MIB,
        )
        .expect("load");
        assert_eq!(policies.len(), 1);
        assert_eq!(policies[0].metadata.name.as_deref(), Some("strict"));
        assert!(state.namespaces.get("payments").is_some());
        assert_eq!(
            state
                .storage_classes
                .get("gp3")
                .map(|c| c.param("encrypted").map(String::from)),
            Some(Some("true".to_string()))
        );
        assert!(state
            .network_policies
            .get("payments", "deny")
            .is_some_and(|n| n.is_default_deny()));

        std::fs::write(dir.path().join("broken.yaml"), "a: [1,\n").expect("write");
        let err = load_paths(
            &[dir.path().to_path_buf()],
            &ClusterState::new(),
            DEFAULT_MAX_FILE_MIB * MIB,
        )
        .unwrap_err();
        assert!(err.to_string().contains("broken.yaml:"), "{err}");
    }
}

mod yaml_tests {
    use super::super::*;

    fn parse(text: &str) -> Result<Vec<Document>, FileError> {
        let mut out = Vec::new();
        parse_documents("in.yaml", text, &mut out).map(|()| out)
    }

    #[test]
    fn errors_carry_file_line_and_column() {
        let err = parse("apiVersion: v1\nkind: ConfigMap\ndata:\n  a: [1,\n").unwrap_err();
        match &err {
            FileError::Yaml { path, line, .. } => {
                assert_eq!((path.as_str(), *line), ("in.yaml", 4))
            }
            other => panic!("{other}"),
        }
        assert!(err.to_string().starts_with("in.yaml:4:"), "{err}");
    }

    #[test]
    fn duplicate_keys_are_refused_not_merged() {
        let err =
            parse("apiVersion: v1\nkind: Service\nmetadata:\n  labels: {a: b}\n  labels: {c: d}\n")
                .unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("in.yaml:5:"), "{text}");
        assert!(
            text.contains("duplicate") && text.contains("labels"),
            "{text}"
        );
        // JSON too (serde_json alone would keep the last value).
        let mut out = Vec::new();
        let err = parse_documents("in.json", r#"{"kind": "Service", "kind": "Pod"}"#, &mut out)
            .unwrap_err();
        assert!(err.to_string().contains("duplicate key \"kind\""), "{err}");
    }

    #[test]
    fn multi_document_streams_lists_and_empty_documents() {
        let docs = parse(
            "---\napiVersion: v1\nkind: Service\nmetadata: {name: a}\n---\n---\n\
             apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Service, metadata: {name: b}}\n",
        )
        .expect("parse");
        let names: Vec<String> = docs.iter().map(Document::name).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(docs[0].source, "in.yaml#1");
        assert!(docs[1].source.ends_with(".1"), "{}", docs[1].source);
    }

    #[test]
    fn merge_keys_expand_and_local_keys_win() {
        let docs = parse(
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: a\n  labels: &l {app: a, tier: web}\n\
             spec:\n  selector:\n    <<: *l\n    tier: api\n",
        )
        .expect("parse");
        assert_eq!(
            docs[0].value["spec"]["selector"],
            serde_json::json!({"app": "a", "tier": "api"})
        );
    }

    #[test]
    fn byte_order_mark_and_concatenated_json() {
        let docs =
            parse("\u{feff}apiVersion: v1\nkind: Service\nmetadata: {name: a}\n").expect("bom");
        assert_eq!(docs[0].api_version, "v1");
        let mut out = Vec::new();
        parse_documents(
            "in.json",
            "\u{feff}{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"a\"}}\n\
             {\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"b\"}}",
            &mut out,
        )
        .expect("json stream");
        let sources: Vec<&str> = out.iter().map(|d| d.source.as_str()).collect();
        assert_eq!(sources, ["in.json#1", "in.json#2"]);
        // A YAML flow mapping starts like JSON but is still read.
        let docs = parse("{apiVersion: v1, kind: Service, metadata: {name: c}}").expect("flow");
        assert_eq!(docs[0].name(), "c");
    }

    #[test]
    fn decode_errors_name_the_field_not_the_value() {
        let v = serde_json::json!({"metadata": {"name": "x", "annotations": {"example.com/id": 424242424242_u64}}});
        let err = decode_object(Kind::Pod, &v, None).unwrap_err();
        assert_eq!(
            err,
            "metadata.annotations[\"example.com/id\"]: invalid type: integer, expected a string"
        );
        let v = serde_json::json!({"spec": {"containers": [{"name": "a", "image": 7}]}});
        let err = decode_object(Kind::Pod, &v, None).unwrap_err();
        assert!(
            err.starts_with("spec.containers[0].image: invalid type: integer"),
            "{err}"
        );
        assert!(!err.contains('7'), "{err}");
        assert_eq!(
            without_values("invalid value: string \"s3cret\", expected a port"),
            "invalid value: string, expected a port"
        );
    }

    #[test]
    fn object_refs_leave_out_what_is_unknown() {
        assert_eq!(object_ref("f#1", "", ""), "f#1");
        assert_eq!(
            object_ref("f#1", "Pod", ""),
            "f#1: Pod with no metadata.name"
        );
        assert_eq!(object_ref("f#1", "Pod", "a"), "f#1: Pod \"a\"");
    }
}

mod platform_tests {
    use super::super::*;
    use crate::view::ClusterView;

    /// `check --cluster-state` reads the same platform objects the watches do: only the named
    /// ConfigMaps (a cilium-config elsewhere is not Cilium's), FelixConfiguration `default`
    /// (not per-node ones) and Kuma Meshes; only their encryption settings are kept.
    #[test]
    fn platform_objects_are_read_from_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let text = r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: cilium-config, namespace: kube-system}
data: {enable-wireguard: "true", cluster-name: default}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: antrea-config, namespace: default}
data: {antrea-agent.conf: "trafficEncryptionMode: wireGuard"}
---
apiVersion: crd.projectcalico.org/v1
kind: FelixConfiguration
metadata: {name: node.worker-1}
spec: {wireguardEnabled: true}
---
apiVersion: crd.projectcalico.org/v1
kind: FelixConfiguration
metadata: {name: default}
spec: {wireguardEnabled: false}
---
apiVersion: kuma.io/v1alpha1
kind: Mesh
metadata: {name: default}
spec: {mtls: {enabledBackend: ca-1, backends: [{name: ca-1, type: builtin}]}}
---
apiVersion: kuma.io/v1alpha1
kind: MeshTLS
metadata: {name: permissive, namespace: kuma-system, labels: {kuma.io/mesh: default}}
spec: {targetRef: {kind: Mesh}, rules: [{default: {mode: Permissive}}]}
"#;
        std::fs::write(dir.path().join("platform.yaml"), text).expect("write");
        let state = ClusterState::new();
        load_paths(
            &[dir.path().to_path_buf()],
            &state,
            DEFAULT_MAX_FILE_MIB * MIB,
        )
        .expect("load");
        let cilium = state
            .platform_encryption(PlatformSource::Cilium)
            .expect("cilium");
        assert_eq!(cilium.enabled, ["enable-wireguard: \"true\""]);
        assert!(
            state.platform_encryption(PlatformSource::Antrea).is_none(),
            "antrea-config outside kube-system is not Antrea's"
        );
        let calico = state
            .platform_encryption(PlatformSource::Calico)
            .expect("calico");
        assert!(!calico.encrypts(), "the per-node override is not read");
        assert!(state.kuma_mesh("default").is_some_and(|m| m.mtls_enabled));
        let tls = state.kuma_mesh_tls("default");
        assert_eq!(tls.len(), 1);
        assert!(tls[0].permissive && tls[0].namespace == "kuma-system");
        assert!(state.kuma_mesh_tls("payments").is_empty());
    }
}

/// The fast reader against serde-saphyr's whole-stream reader on every YAML file of the
/// repository (third-party manifests, charts' templates excluded: they are not YAML until
/// rendered): the same documents, numbered the same, or the same error at the same position.
pub(super) mod against_the_stream_reader {
    use super::super::{yaml, FileError};
    use serde_json::Value;
    use std::path::{Path, PathBuf};

    /// The YAML files under `dir` (chart templates left out: they are not YAML until rendered).
    pub(in super::super) fn files(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() && !p.ends_with("templates") {
                files(&p, out);
            } else if p.extension().is_some_and(|x| x == "yaml" || x == "yml") {
                out.push(p);
            }
        }
    }

    /// A reader as the tests call it: a file name, its text, where each document goes.
    type Reader = fn(
        &str,
        &str,
        &mut dyn FnMut(String, Value) -> Result<(), FileError>,
    ) -> Result<(), FileError>;

    fn read(text: &str, reader: Reader) -> Result<Vec<(String, Value)>, String> {
        let mut docs = Vec::new();
        reader("f", text, &mut |s, v| {
            docs.push((s, v));
            Ok(())
        })
        .map(|()| docs)
        .map_err(|e| e.to_string())
    }

    #[test]
    fn every_yaml_file_of_the_repository_reads_the_same() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut paths = Vec::new();
        for dir in ["tests/fixtures", "examples", "charts", "crds", "docs"] {
            files(&root.join(dir), &mut paths);
        }
        assert!(paths.len() > 50, "found only {} files", paths.len());
        let mut documents = 0;
        for p in &paths {
            let text = std::fs::read_to_string(p).unwrap_or_default();
            let fast = read(&text, |n, t, f| {
                yaml::for_each_yaml(n, t, &mut |s, v| f(s, v))
            });
            let stream = read(&text, |n, t, f| {
                yaml::for_each_yaml_stream(n, t, &mut |s, v| f(s, v))
            });
            assert_eq!(fast, stream, "{}", p.display());
            documents += fast.map_or(0, |d| d.len());
        }
        assert!(documents > 150, "read only {documents} documents");
    }

    /// A kustomization with a long commented-out list (cloudnative-pg's `config/crd`) was
    /// refused by the stream reader while it buffered comments; both readers skip them now.
    #[test]
    fn long_runs_of_comments_are_read() {
        let text = format!(
            "resources:\n{}- a.yaml\n---\nkind: X\n{}apiVersion: v1\n",
            "# - old.yaml\n".repeat(150),
            "#\n".repeat(150)
        );
        let fast = read(&text, |n, t, f| {
            yaml::for_each_yaml(n, t, &mut |s, v| f(s, v))
        });
        let stream = read(&text, |n, t, f| {
            yaml::for_each_yaml_stream(n, t, &mut |s, v| f(s, v))
        });
        assert_eq!(fast.as_ref().map(Vec::len), Ok(2));
        assert_eq!(fast, stream);
    }

    #[test]
    fn errors_keep_their_positions_in_the_stream() {
        for text in [
            "a: 1\n---\nb: 2\nb: 3\n",
            "---\nx: 1\n---\ny: [1, 2\n",
            "a: 1\n---\nk: 'open\n",
            "a: 1\n---\nb: *nothing\n",
            "%YAML 1.2\n---\na: 1\na: 2\n",
            "a: 1\n---\n---\nc: 0644\n---\n- 1\n- x: [\n",
        ] {
            let fast = read(text, |n, t, f| {
                yaml::for_each_yaml(n, t, &mut |s, v| f(s, v))
            });
            let stream = read(text, |n, t, f| {
                yaml::for_each_yaml_stream(n, t, &mut |s, v| f(s, v))
            });
            assert!(fast.is_err(), "{text:?}");
            assert_eq!(fast, stream, "{text:?}");
        }
    }
}
