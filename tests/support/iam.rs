//! moto's IAM, driven with boto3 as the bootstrap user the test script
//! created: users with keys, and roles to assume.

use serde_json::{json, Value};

use ld_dynamodb_host::embed::Credentials;

use crate::Backend;

/// A policy document that allows `actions` on every resource.
fn allow(actions: &[&str]) -> String {
    json!({
        "Version": "2012-10-17",
        "Statement": [{ "Effect": "Allow", "Action": actions, "Resource": "*" }],
    })
    .to_string()
}

/// An IAM user of moto's, allowed `actions`.
pub struct Iam {
    moto: Backend,
    user: String,
    /// The user's ARN, which a role's trust policy names.
    pub arn: String,
}

impl Iam {
    /// Creates the user `{label}-{pid}` with a policy allowing `actions`.
    pub fn new_user(moto: &Backend, label: &str, actions: &[&str]) -> Iam {
        let user = format!("{label}-{}", std::process::id());
        let out = moto.boto_service(
            "iam",
            json!([
                ["CreateUser", { "UserName": user }],
                ["PutUserPolicy", { "UserName": user, "PolicyName": "allowed", "PolicyDocument": allow(actions) }],
            ]),
        );
        Iam {
            moto: moto.clone(),
            user,
            arn: out[0]["User"]["Arn"].as_str().unwrap().to_string(),
        }
    }

    /// A new access key of the user.
    pub fn create_key(&self) -> Credentials {
        let out = self.moto.boto_service(
            "iam",
            json!([["CreateAccessKey", { "UserName": self.user }]]),
        );
        let key = &out[0]["AccessKey"];
        Credentials {
            access_key_id: key["AccessKeyId"].as_str().unwrap().into(),
            secret_access_key: key["SecretAccessKey"].as_str().unwrap().into(),
            session_token: None,
        }
    }

    /// Deletes one of the user's keys.
    pub fn delete_key(&self, key: &Credentials) {
        self.moto.boto_service(
            "iam",
            json!([["DeleteAccessKey", { "UserName": self.user, "AccessKeyId": key.access_key_id }]]),
        );
    }
}

/// Creates the role `{label}-{pid}`, which the principal `trusted` (an ARN)
/// may assume, with a policy allowing `actions`; its ARN.
pub fn new_role(moto: &Backend, label: &str, trusted: &str, actions: &[&str]) -> String {
    let role = format!("{label}-{}", std::process::id());
    let trust = json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": { "AWS": trusted },
            "Action": "sts:AssumeRole",
        }],
    });
    let out: Vec<Value> = moto.boto_service(
        "iam",
        json!([
            ["CreateRole", { "RoleName": role, "AssumeRolePolicyDocument": trust.to_string() }],
            ["PutRolePolicy", { "RoleName": role, "PolicyName": "allowed", "PolicyDocument": allow(actions) }],
        ]),
    );
    out[0]["Role"]["Arn"].as_str().unwrap().to_string()
}
