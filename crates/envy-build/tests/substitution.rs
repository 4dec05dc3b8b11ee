//! Substitution before building: outputs found in a binary cache (signed by a trusted key)
//! are fetched instead of built, and then the derivations they were built from need not be
//! built either; an untrusted or empty cache means building, as before.

mod common;

use std::sync::Mutex;

use common::Fixture;
use envy_build::{BuildEvent, Builder, SandboxMode};
use envy_store::StorePath;
use envy_store::cache::{BinaryCache, SecretKey, Substituter, UploadOptions, copy_to_cache};

/// A chain `lib` ← `app`, written to the fixture's store.
fn chain(fx: &mut Fixture) -> (StorePath, StorePath) {
    let lib = fx.drv("lib", "echo lib > $out", &[], &[], None);
    let lib_out = fx.drv_out(&lib);
    let app = fx.drv(
        "app",
        "/bin/mkdir $out; echo \"$lib\" > $out/uses; /bin/cat $lib > $out/copy",
        &[("lib", &lib_out)],
        &[&lib],
        None,
    );
    (lib, app)
}

struct Events(Mutex<Vec<BuildEvent>>);

impl envy_build::Progress for Events {
    fn event(&self, event: BuildEvent) {
        self.0.lock().unwrap().push(event);
    }
}

#[test]
fn outputs_come_from_a_trusted_cache_and_their_inputs_are_not_built() {
    let mut fx = Fixture::new(SandboxMode::Auto);
    let cache_dir = fx.tmp.path().join("cache");
    let url = format!("file://{}", cache_dir.display());
    let key = SecretKey::from_seed("test-cache-1", &[7; 32]);

    // Build the chain once and upload `app`'s output (with its closure, `lib`'s output).
    let (_, app) = chain(&mut fx);
    let results = Builder::new(&fx.store, &fx.config, &envy_build::NoProgress)
        .build(std::slice::from_ref(&app))
        .unwrap();
    let app_out = results[&app]["out"].clone();
    let cache = BinaryCache::open(&url).unwrap();
    let options = UploadOptions {
        secret_key: Some(key.clone()),
        ..UploadOptions::default()
    };
    copy_to_cache(
        &fx.store,
        &cache,
        std::slice::from_ref(&app_out),
        &options,
        &|_| {},
    )
    .unwrap();
    let built_contents = fs_err::read_to_string(fx.out(&results, &app).join("copy")).unwrap();

    // A fresh store at the same place: nothing valid, the cache has both outputs.
    fx.reset();
    let (lib, app) = chain(&mut fx);
    let substituter = Substituter::new(std::slice::from_ref(&url), vec![key.public()]).unwrap();
    let events = Events(Mutex::default());
    let builder = Builder::new(&fx.store, &fx.config, &events).with_substituter(&substituter);
    let results = builder.build(std::slice::from_ref(&app)).unwrap();
    assert_eq!(builder.built_count(), 0, "nothing was built");
    assert_eq!(builder.substituted_count(), 1);
    assert_eq!(results[&app]["out"], app_out);
    assert!(
        !results.contains_key(&lib),
        "`lib` was not even planned: `app`'s output was substituted with its closure"
    );
    assert_eq!(
        fs_err::read_to_string(fx.out(&results, &app).join("copy")).unwrap(),
        built_contents
    );
    let lib_out = StorePath::from_base_name(
        std::path::Path::new(&fx.drv_out(&lib))
            .file_name()
            .unwrap()
            .to_str()
            .unwrap(),
    )
    .unwrap();
    assert!(
        fx.store.is_valid(&lib_out).unwrap(),
        "the closure came along"
    );
    assert!(!fx.config.logs.exists(app.base_name()), "no build log");
    let events = events.0.into_inner().unwrap();
    assert!(
        events.contains(&BuildEvent::Substituted {
            drv: fx.dir().print(&app)
        }),
        "{events:?}"
    );
    assert!(events.contains(&BuildEvent::Planned { to_build: 0 }));
    let downloads = events
        .iter()
        .filter(|e| matches!(e, BuildEvent::Downloading { .. }))
        .count();
    assert_eq!(downloads, 2, "{events:?}");

    // The fetched paths are exactly what was uploaded: a valid store afterwards.
    let report = fx.store.verify(true, &mut |_, _| {}).unwrap();
    assert!(report.is_ok(), "{report:?}");

    // The same cache without the key: the signatures are not trusted, so envy builds.
    fx.reset();
    let (_, app) = chain(&mut fx);
    let untrusted = Substituter::new(std::slice::from_ref(&url), vec![]).unwrap();
    let events = Events(Mutex::default());
    let builder = Builder::new(&fx.store, &fx.config, &events).with_substituter(&untrusted);
    builder.build(std::slice::from_ref(&app)).unwrap();
    assert_eq!((builder.built_count(), builder.substituted_count()), (2, 0));
    let events = events.0.into_inner().unwrap();
    assert!(
        events.iter().any(|e| matches!(e, BuildEvent::Warning { message }
            if message.starts_with("ignoring substitute for") && message.contains("trusted-public-keys"))),
        "{events:?}"
    );
}

/// A cache that cannot be read is a warning, and the derivation is built.
#[test]
fn a_broken_cache_means_building() {
    let mut fx = Fixture::new(SandboxMode::Auto);
    let cache_dir = fx.tmp.path().join("cache");
    fs_err::create_dir_all(&cache_dir).unwrap();
    // A cache for another store dir: refused by the substituter.
    fs_err::write(
        cache_dir.join("nix-cache-info"),
        "StoreDir: /elsewhere/store\n",
    )
    .unwrap();
    let url = format!("file://{}", cache_dir.display());
    let (_, app) = chain(&mut fx);
    let substituter = Substituter::new(std::slice::from_ref(&url), vec![]).unwrap();
    let events = Events(Mutex::default());
    let builder = Builder::new(&fx.store, &fx.config, &events).with_substituter(&substituter);
    builder.build(std::slice::from_ref(&app)).unwrap();
    assert_eq!(builder.built_count(), 2);
    let events = events.0.into_inner().unwrap();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, BuildEvent::Warning { message }
            if message.contains("cannot substitute") && message.ends_with("building it instead"))),
        "{events:?}"
    );
}
