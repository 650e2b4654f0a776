//! A target on a file system that cannot hold every name, mode or time: exFAT, mounted
//! through FUSE on a loop device. Names it refuses are reported per file and the rest syncs;
//! its placeholder modes and coarse times never flow back into the source.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::fixtures::*;

/// An exFAT file system in a file, attached to a loop device and mounted; undone on drop.
pub(crate) struct ExFat {
    pub(crate) dir: PathBuf,
    loopdev: String,
}

impl ExFat {
    pub(crate) fn mount(at: &Path, image: &Path) -> Option<ExFat> {
        let tools = ["mkfs.exfat", "mount.exfat-fuse", "losetup"];
        if let Some(missing) = tools.iter().find(|t| {
            Command::new("sh")
                .args(["-c", &format!("command -v {t}")])
                .output()
                .map_or(true, |o| !o.status.success())
        }) {
            let msg = format!("{missing} is not installed (Debian: exfatprogs, exfat-fuse, mount); .ci/run installs it");
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("{msg}");
            }
            eprintln!("SKIPPED: exFAT target test: {msg}");
            return None;
        }
        let run = |cmd: &mut Command| {
            let out = cmd.output().unwrap();
            assert!(
                out.status.success(),
                "{cmd:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        };
        run(Command::new("truncate").args(["-s", "64M"]).arg(image));
        run(Command::new("mkfs.exfat").arg(image));
        let loopdev = run(Command::new("losetup").args(["-f", "--show"]).arg(image));
        std::fs::create_dir_all(at).unwrap();
        run(Command::new("mount.exfat-fuse").arg(&loopdev).arg(at));
        Some(ExFat {
            dir: at.to_path_buf(),
            loopdev,
        })
    }
}

impl Drop for ExFat {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.dir).status();
        let _ = Command::new("losetup").args(["-d", &self.loopdev]).status();
    }
}

#[test]
fn exfat_target_reports_names_it_cannot_hold_and_keeps_source_modes() {
    let p = Pair::new();
    let Some(fat) = ExFat::mount(&p.tmp.path().join("fat"), &p.tmp.path().join("fat.img")) else {
        return;
    };
    let tgt = fat.dir.clone();
    p.write(S::Src, "ok.txt", "fine");
    std::fs::set_permissions(
        p.path(S::Src, "ok.txt"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    p.write(S::Src, "colon:name.txt", "refused by exFAT");
    p.write(S::Src, "sub/fine.txt", "fine too");
    p.write(S::Src, "sub/what?.txt", "refused too");
    let sync = || {
        run_tandem([
            "sync".as_ref(),
            p.src.as_os_str(),
            tgt.as_os_str(),
            "--state-dir".as_ref(),
            p.state.as_os_str(),
            "--modify-window".as_ref(),
            "2s".as_ref(),
            "--json".as_ref(),
        ])
    };
    let out = sync();
    assert_eq!(out.code, 1, "{}", out.all());
    let summary = out.stdout.lines().last().unwrap();
    for name in ["colon:name.txt", "sub/what?.txt"] {
        assert!(
            summary.contains(&format!("\"path\":\"{name}\"")),
            "{name} reported: {summary}"
        );
    }
    assert!(summary.contains("cannot hold the name"), "{summary}");
    assert_eq!(std::fs::read_to_string(tgt.join("ok.txt")).unwrap(), "fine");
    assert_eq!(
        std::fs::read_to_string(tgt.join("sub/fine.txt")).unwrap(),
        "fine too"
    );
    assert!(std::fs::read_dir(&tgt).unwrap().all(|e| !e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .starts_with(".tandem-tmp")));

    // Nothing bounces back: exFAT shows mode 0777 and coarse times, the source keeps its own.
    let mtime = mtime_ns(&p.path(S::Src, "ok.txt"));
    let again = sync();
    assert_eq!(
        again.code,
        1,
        "the refused names are still reported: {}",
        again.all()
    );
    let summary = again.stdout.lines().last().unwrap();
    assert!(
        summary.contains("\"copied\":0") && summary.contains("\"metadata\":0"),
        "{summary}"
    );
    assert_eq!(
        std::fs::metadata(p.path(S::Src, "ok.txt"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    assert_eq!(mtime_ns(&p.path(S::Src, "ok.txt")), mtime);

    // An edit on the exFAT side comes back with its content, not its placeholder mode.
    std::fs::write(tgt.join("ok.txt"), "edited on the stick").unwrap();
    let back = sync();
    assert_eq!(back.code, 1, "{}", back.all());
    assert_eq!(p.read(S::Src, "ok.txt"), "edited on the stick");
    assert_eq!(
        std::fs::metadata(p.path(S::Src, "ok.txt"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
}

#[test]
fn issue_16_names_differing_only_in_case_are_reported() {
    let p = Pair::new();
    let Some(fat) = ExFat::mount(&p.tmp.path().join("fat"), &p.tmp.path().join("fat.img")) else {
        return;
    };
    let tgt = fat.dir.clone();
    // exFAT folds case: each pair below is one name there.
    p.write(S::Src, "README.md", "upper");
    p.write(S::Src, "Readme.md", "mixed");
    p.write(S::Src, "Docs/a.txt", "in Docs");
    p.write(S::Src, "docs/b.txt", "in docs");
    p.write(S::Src, "other.txt", "fine");
    let sync = || {
        run_tandem([
            "sync".as_ref(),
            p.src.as_os_str(),
            tgt.as_os_str(),
            "--state-dir".as_ref(),
            p.state.as_os_str(),
            "--modify-window".as_ref(),
            "2s".as_ref(),
            "--json".as_ref(),
        ])
    };
    let check = |out: &Out| {
        assert_eq!(out.code, 1, "{}", out.all());
        let summary = out.stdout.lines().last().unwrap();
        for name in ["Readme.md", "docs", "docs/b.txt"] {
            assert!(
                summary.contains(&format!("\"path\":\"{name}\"")),
                "{name} reported: {summary}"
            );
        }
        for name in ["README.md", "Docs", "Docs/a.txt", "other.txt"] {
            assert!(
                !summary.contains(&format!("\"path\":\"{name}\"")),
                "{name} not reported: {summary}"
            );
        }
        assert!(
            summary.contains("the target cannot hold two names differing only in case"),
            "{summary}"
        );
        // The first name in path order holds the place; nothing landed on it.
        let mut names: Vec<String> = std::fs::read_dir(&tgt)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with(".tandem"))
            .collect();
        names.sort();
        assert_eq!(names, ["Docs", "README.md", "other.txt"]);
        assert_eq!(
            std::fs::read_to_string(tgt.join("README.md")).unwrap(),
            "upper"
        );
        assert_eq!(
            std::fs::read_to_string(tgt.join("Docs/a.txt")).unwrap(),
            "in Docs"
        );
        assert!(
            !tgt.join("Docs/b.txt").exists(),
            "docs/b.txt not put in Docs"
        );
        assert_eq!(
            std::fs::read_to_string(tgt.join("other.txt")).unwrap(),
            "fine"
        );
        // The source keeps both names of each pair as they were.
        assert_eq!(p.read(S::Src, "README.md"), "upper");
        assert_eq!(p.read(S::Src, "Readme.md"), "mixed");
        assert_eq!(p.read(S::Src, "docs/b.txt"), "in docs");
    };
    check(&sync());
    // Every run reports them again, and never overwrites or deletes the first.
    let again = sync();
    check(&again);
    let summary = again.stdout.lines().last().unwrap();
    assert!(summary.contains("\"copied\":0"), "{summary}");
}
