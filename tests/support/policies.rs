//! The minimal IAM policies of `docs/iam/`, read and checked for their form,
//! and moto IAM users that hold exactly one of them, or one of them without
//! one of its actions.
//!
//! moto authorizes a DynamoDB action against the resource `"*"` only (its
//! DynamoDB has no resource of its own for IAM: `moto/core/responses.py`
//! `call_action`), so a policy scoped to a table ARN denies everything there.
//! The users get the policy's actions on `"*"`; that each file is scoped to
//! one table ARN is checked by [`Policy::load`] instead.

use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

use crate::proxy::{Action, Proxy};
use crate::{project_root, Backend};

/// The resource of every policy: one table, with placeholders a user replaces.
pub const TABLE_ARN: &str = "arn:aws:dynamodb:REGION:ACCOUNT_ID:table/TABLE_NAME";

/// One policy file of `docs/iam/`.
pub struct Policy {
    /// The file's name without `.json`.
    pub name: String,
    /// The actions it allows, without the `dynamodb:` service prefix.
    pub actions: Vec<String>,
}

impl Policy {
    /// Reads `docs/iam/{name}.json` and checks its form: one statement that
    /// allows DynamoDB actions, each once and sorted, on [`TABLE_ARN`] only.
    pub fn load(name: &str) -> Policy {
        let path = project_root().join("docs/iam").join(format!("{name}.json"));
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{} is readable: {e}", path.display()));
        let document: Value = serde_json::from_str(&text).expect("a policy is JSON");
        assert_eq!(document["Version"], "2012-10-17", "{name}");
        let statements = document["Statement"].as_array().expect("a statement list");
        assert_eq!(statements.len(), 1, "{name}: one statement");
        let statement = &statements[0];
        assert_eq!(statement["Effect"], "Allow", "{name}");
        assert_eq!(statement["Resource"], TABLE_ARN, "{name}: one table");
        let actions: Vec<String> = statement["Action"]
            .as_array()
            .expect("an action list")
            .iter()
            .map(|a| {
                let a = a.as_str().expect("an action is a string");
                a.strip_prefix("dynamodb:")
                    .unwrap_or_else(|| panic!("{name}: {a} is a DynamoDB action"))
                    .to_string()
            })
            .collect();
        assert!(!actions.is_empty(), "{name}");
        assert!(
            actions.windows(2).all(|w| w[0] < w[1]),
            "{name}: the actions are sorted, each once: {actions:?}"
        );
        Policy {
            name: name.to_string(),
            actions,
        }
    }

    /// A policy document as moto checks it: the actions but `without`, on
    /// any resource; `None` when no action is left.
    fn for_moto(&self, without: Option<&str>) -> Option<String> {
        let actions: Vec<String> = self
            .actions
            .iter()
            .filter(|a| Some(a.as_str()) != without)
            .map(|a| format!("dynamodb:{a}"))
            .collect();
        (!actions.is_empty()).then(|| {
            json!({
                "Version": "2012-10-17",
                "Statement": [{ "Effect": "Allow", "Action": actions, "Resource": "*" }],
            })
            .to_string()
        })
    }
}

/// moto users of one policy: `exact` holds the policy; each of `lacking`
/// holds it without the named action.
pub struct PolicyUsers {
    /// The backend as the user with exactly the policy reaches it.
    pub exact: Backend,
    /// Per action of the policy: the backend as a user without it.
    pub lacking: Vec<(String, Backend)>,
}

impl PolicyUsers {
    /// Every user: the exact one first, then those lacking an action in
    /// the policy's order.
    pub fn all(&self) -> impl Iterator<Item = &Backend> {
        std::iter::once(&self.exact).chain(self.lacking.iter().map(|(_, user)| user))
    }

    /// Creates the users (`{label}-...`) and their keys in moto's IAM (one
    /// boto3 run), as `moto`'s own user (allowed `iam:*`).
    pub fn create(moto: &Backend, policy: &Policy, label: &str) -> PolicyUsers {
        let variants: Vec<Option<&str>> = std::iter::once(None)
            .chain(policy.actions.iter().map(|a| Some(a.as_str())))
            .collect();
        let mut calls = Vec::new();
        let mut key_results = Vec::new();
        for without in &variants {
            let user = format!(
                "{label}-{}-{}",
                without.map_or("exact".into(), |a| format!("no-{a}")),
                std::process::id()
            );
            calls.push(json!(["CreateUser", { "UserName": user }]));
            if let Some(document) = policy.for_moto(*without) {
                calls.push(json!(["PutUserPolicy", {
                    "UserName": user, "PolicyName": policy.name, "PolicyDocument": document,
                }]));
            }
            key_results.push(calls.len());
            calls.push(json!(["CreateAccessKey", { "UserName": user }]));
        }
        let out = moto.boto_service("iam", Value::Array(calls));
        let mut users = variants.iter().zip(key_results).map(|(without, at)| {
            let key = &out[at]["AccessKey"];
            let backend = Backend {
                access_key_id: key["AccessKeyId"].as_str().unwrap().into(),
                secret_access_key: key["SecretAccessKey"].as_str().unwrap().into(),
                ..moto.clone()
            };
            (without.unwrap_or_default().to_string(), backend)
        });
        let exact = users.next().unwrap().1;
        PolicyUsers {
            exact,
            lacking: users.collect(),
        }
    }
}

/// Checks that `text`, what a user of `backend` sees of a failure, is moto's
/// denial of `dynamodb:{action}` (code `AccessDenied`, HTTP 403) and holds
/// no secret key.
pub fn assert_denied(text: &str, action: &str, backend: &Backend) {
    assert!(
        text.contains("AccessDenied")
            && text.contains(&format!("is not authorized to perform: dynamodb:{action}")),
        "denied dynamodb:{action}: {text}"
    );
    assert!(
        !text.contains(&backend.secret_access_key),
        "no secret: {text}"
    );
}

/// A proxy in front of moto that keeps each DynamoDB operation sent through
/// it with the body of moto's answer: which actions a part used, and a
/// denial the part did not show its user.
pub struct Recorder {
    proxy: Proxy,
    /// (operation, answer body), in the order the answers came.
    sent: Arc<Mutex<Vec<(String, String)>>>,
}

impl Recorder {
    /// Starts one in front of `moto`, in the test's tokio runtime.
    pub async fn start(moto: &Backend) -> Recorder {
        let sent: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
        let log = sent.clone();
        let proxy = Proxy::start(&moto.endpoint, move |request| {
            let (op, log) = (request.op.clone(), log.clone());
            // The same body (its signature holds); the answer kept, unchanged.
            Action::Rewrite(
                request.body.clone(),
                Box::new(move |answer| {
                    let text = String::from_utf8_lossy(&answer).into_owned();
                    log.lock().unwrap().push((op, text));
                    answer
                }),
            )
        })
        .await;
        Recorder { proxy, sent }
    }

    /// `user`, reaching moto through this proxy.
    pub fn route(&self, user: &Backend) -> Backend {
        Backend {
            endpoint: self.proxy.endpoint.clone(),
            ..user.clone()
        }
    }

    /// The operations sent so far, each once, sorted.
    pub fn operations(&self) -> Vec<String> {
        let mut ops: Vec<String> = self
            .sent
            .lock()
            .unwrap()
            .iter()
            .map(|(op, _)| op.clone())
            .collect();
        ops.sort();
        ops.dedup();
        ops
    }

    /// The first answer that denied an operation.
    pub fn denial(&self) -> Option<String> {
        self.sent
            .lock()
            .unwrap()
            .iter()
            .find(|(_, answer)| answer.contains("AccessDenied"))
            .map(|(_, answer)| answer.clone())
    }
}
