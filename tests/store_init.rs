//! `envy store init`: a store directory becomes envy's default store (recorded in
//! `$XDG_CONFIG_HOME/envy/config.toml` with cache.nixos.org as substituter), and a directory
//! Nix (or anyone) already wrote into is refused. Temporary store directories stand in for
//! `/nix/store`.

mod common;

use std::path::Path;
use std::process::Output;

fn envy(home: &Path, dir: &Path, args: &[&str]) -> Output {
    common::envy_in(
        dir,
        args,
        [
            ("HOME", home.to_str().unwrap()),
            ("XDG_CONFIG_HOME", home.join(".config").to_str().unwrap()),
            ("XDG_DATA_HOME", home.join(".local/share").to_str().unwrap()),
            ("XDG_CACHE_HOME", home.join(".cache").to_str().unwrap()),
            ("PATH", "/usr/bin:/bin"),
        ],
    )
    .output()
    .unwrap()
}

#[test]
fn init_makes_the_store_the_default_with_cache_nixos_org() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let store_dir = tmp.path().join("nix/store");
    let config = home.join(".config/envy/config.toml");
    fs_err::create_dir_all(config.parent().unwrap()).unwrap();
    fs_err::write(
        &config,
        "hashed-mirrors = [\"https://tarballs.example.org\"]\n",
    )
    .unwrap();

    let out = envy(
        &home,
        tmp.path(),
        &["store", "init", "--store-dir", store_dir.to_str().unwrap()],
    );
    common::assert_success(&out, "envy store init");
    let text = fs_err::read_to_string(&config).unwrap();
    let table: toml::Table = text.parse().unwrap();
    assert_eq!(table["store-dir"].as_str(), store_dir.to_str());
    assert_eq!(
        table["state-dir"].as_str(),
        tmp.path().join("nix/var/envy").to_str()
    );
    assert_eq!(
        table["substituters"].as_array().unwrap(),
        &vec![toml::Value::from("https://cache.nixos.org")]
    );
    assert_eq!(
        table["trusted-public-keys"].as_array().unwrap(),
        &vec![toml::Value::from(
            "cache.nixos.org-1:6NCHdD59X431o0gWypbMrAURkbJ16ZPMQFGspcDShjY="
        )]
    );
    // What was in the file stays.
    assert_eq!(
        table["hashed-mirrors"].as_array().unwrap(),
        &vec![toml::Value::from("https://tarballs.example.org")]
    );

    // From now on envy's commands use that store without being told.
    let file = tmp.path().join("hello.txt");
    fs_err::write(&file, "hello\n").unwrap();
    let out = envy(&home, tmp.path(), &["store", "add", file.to_str().unwrap()]);
    common::assert_success(&out, "envy store add");
    let added = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(
        added.starts_with(&format!("{}/", store_dir.display())),
        "{added}"
    );
    assert_eq!(fs_err::read_to_string(&added).unwrap(), "hello\n");
    assert!(tmp.path().join("nix/var/envy").is_dir());
    assert!(!home.join(".local/share/envy/store").exists());
    let status = envy(&home, tmp.path(), &["status", "--json"]);
    common::assert_success(&status, "envy status");
    let doc: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(doc["store"]["kind"], "envy");
    assert_eq!(doc["store"]["store_dir"].as_str(), store_dir.to_str());

    // Running it again changes nothing (no duplicate substituter).
    let out = envy(
        &home,
        tmp.path(),
        &["store", "init", "--store-dir", store_dir.to_str().unwrap()],
    );
    common::assert_success(&out, "envy store init (again)");
    assert_eq!(fs_err::read_to_string(&config).unwrap(), text);
}

#[test]
fn init_refuses_a_directory_someone_else_wrote_into() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    // What a Nix store looks like to envy: store paths it did not put there.
    let store_dir = tmp.path().join("nix/store");
    fs_err::create_dir_all(store_dir.join("hxcnl7nh8wbfiwfzkfnac84cgnf766kc-triv")).unwrap();
    let out = envy(
        &home,
        tmp.path(),
        &["store", "init", "--store-dir", store_dir.to_str().unwrap()],
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot make") && stderr.contains("is not marked as envy's"),
        "{stderr}"
    );
    assert!(stderr.contains("hint:"), "{stderr}");
    assert!(!home.join(".config/envy/config.toml").exists());
    assert!(!store_dir.join(".envy-store").exists());
}
