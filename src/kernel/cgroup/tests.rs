//! The backends against fake cgroup roots (plain directories: a file
//! exists once written), and mountinfo parsing.

use std::fs;
use std::path::Path;
use std::time::Duration;

use super::*;

fn temp_root(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("nslab-cgroup-{tag}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn text(path: &Path) -> String {
    fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .trim()
        .to_string()
}

fn limited() -> Limits {
    Limits {
        cpus: Some(0.25),
        cpuset: Some("0".into()),
        memory: Some(64 << 20),
        pids: Some(20),
    }
}

/// A v2 root offering and handing down every controller nslab limits.
fn fake_v2(tag: &str, handed: &str) -> PathBuf {
    let root = temp_root(tag);
    fs::write(
        root.join("cgroup.controllers"),
        "cpuset cpu io memory hugetlb pids",
    )
    .unwrap();
    fs::write(root.join("cgroup.subtree_control"), handed).unwrap();
    root
}

#[test]
fn v2_writes_limit_files_and_hands_controllers_down_in_its_own_dirs() {
    let root = fake_v2("v2", "cpuset cpu memory pids");
    let cgroups = Cgroups::v2_at(&root);
    let none = Limits::default();
    cgroups
        .create_lab("lab", &[("a", &limited()), ("b", &none)])
        .expect("create");
    let lab = root.join("nslab/lab");
    assert_eq!(text(&lab.join("a/cpu.max")), "25000 100000");
    assert_eq!(text(&lab.join("a/cpuset.cpus")), "0");
    assert_eq!(text(&lab.join("a/memory.max")), (64u64 << 20).to_string());
    assert_eq!(text(&lab.join("a/pids.max")), "20");
    // An unlimited node is placed all the same, and writes no limit.
    assert!(lab.join("b").is_dir());
    assert!(!lab.join("b/memory.max").exists());
    assert_eq!(cgroups.memory_limit("lab", "a"), Some(64 << 20));
    assert_eq!(cgroups.memory_limit("lab", "b"), None);
    fs::write(lab.join("b/memory.max"), "max\n").unwrap();
    assert_eq!(cgroups.memory_limit("lab", "b"), None);
    assert_eq!(cgroups.memory_usage("lab", "a"), None);
    fs::write(lab.join("a/memory.current"), "1234567\n").unwrap();
    assert_eq!(cgroups.memory_usage("lab", "a"), Some(1234567));
    for dir in [root.join("nslab"), lab.clone()] {
        assert_eq!(
            text(&dir.join("cgroup.subtree_control")),
            "+cpu +cpuset +memory +pids"
        );
    }
    // The host's root is only read.
    assert_eq!(
        text(&root.join("cgroup.subtree_control")),
        "cpuset cpu memory pids"
    );
    // A v2 node's init is cloned into its cgroup: nothing to write.
    assert!(cgroups.node_procs("lab", "a").is_empty());
    assert_eq!(cgroups.node_v2_dir("lab", "a"), Some(lab.join("a")));
    assert_eq!(cgroups.labs(), vec!["lab".to_string()]);
    let _ = fs::remove_dir_all(&root);
}

#[test]
fn v2_without_limits_only_places() {
    // Like the unified hierarchy of a hybrid host: no controller at all.
    let root = temp_root("v2-bare");
    fs::write(root.join("cgroup.controllers"), "").unwrap();
    fs::write(root.join("cgroup.subtree_control"), "").unwrap();
    let cgroups = Cgroups::v2_at(&root);
    let none = Limits::default();
    cgroups.create_lab("lab", &[("a", &none)]).expect("create");
    assert!(root.join("nslab/lab/a").is_dir());
    assert!(!root.join("nslab/cgroup.subtree_control").exists());
    let limits = Limits {
        memory: Some(64 << 20),
        ..Limits::default()
    };
    let e = cgroups
        .create_lab("lab2", &[("a", &limits)])
        .expect_err("no memory controller");
    assert!(
        matches!(
            e,
            CgroupError::NoController {
                controller: "memory",
                key: "memory"
            }
        ),
        "{e}"
    );
    let _ = fs::remove_dir_all(&root);
}

#[test]
fn v2_never_enables_a_controller_on_the_hosts_root() {
    let root = fake_v2("v2-root", "cpu pids");
    let cgroups = Cgroups::v2_at(&root);
    let e = cgroups
        .create_lab("lab", &[("a", &limited())])
        .expect_err("memory is not handed down");
    assert!(matches!(e, CgroupError::NotDelegated { .. }), "{e}");
    assert!(
        e.to_string().contains("cpuset") || e.to_string().contains("memory"),
        "{e}"
    );
    assert_eq!(text(&root.join("cgroup.subtree_control")), "cpu pids");
    let _ = fs::remove_dir_all(&root);
}

#[test]
fn v1_writes_each_limit_in_its_own_hierarchy() {
    let base = temp_root("v1");
    let mut roots = Vec::new();
    for name in ["cpu", "cpuacct", "cpuset", "memory", "pids"] {
        let root = base.join(name);
        fs::create_dir_all(&root).unwrap();
        roots.push(root);
    }
    fs::write(base.join("cpuset/cpuset.cpus"), "0-1").unwrap();
    fs::write(base.join("cpuset/cpuset.mems"), "0").unwrap();
    let layout: Vec<(&Path, &[&str])> = vec![
        (&roots[0], &["cpu"]),
        (&roots[1], &["cpuacct"]),
        (&roots[2], &["cpuset"]),
        (&roots[3], &["memory"]),
        (&roots[4], &["pids"]),
    ];
    let cgroups = Cgroups::v1_at(&layout);
    let none = Limits::default();
    cgroups
        .create_lab("lab", &[("a", &limited()), ("b", &none)])
        .expect("create");
    let node = |h: &str, n: &str| base.join(h).join("nslab/lab").join(n);
    assert_eq!(text(&node("cpu", "a").join("cpu.cfs_quota_us")), "25000");
    assert_eq!(text(&node("cpu", "a").join("cpu.cfs_period_us")), "100000");
    assert_eq!(text(&node("cpuset", "a").join("cpuset.cpus")), "0");
    assert_eq!(text(&node("cpuset", "a").join("cpuset.mems")), "0");
    // Copied from the parent, down from the host's root.
    assert_eq!(text(&node("cpuset", "b").join("cpuset.cpus")), "0-1");
    assert_eq!(text(&base.join("cpuset/nslab/cpuset.mems")), "0");
    assert_eq!(
        text(&node("memory", "a").join("memory.limit_in_bytes")),
        (64u64 << 20).to_string()
    );
    assert_eq!(text(&node("pids", "a").join("pids.max")), "20");
    assert_eq!(cgroups.memory_limit("lab", "a"), Some(64 << 20));
    fs::write(
        node("memory", "b").join("memory.limit_in_bytes"),
        "9223372036854771712",
    )
    .unwrap();
    assert_eq!(cgroups.memory_limit("lab", "b"), None);
    assert!(node("cpuacct", "a").is_dir());
    // The init writes itself into each v1 hierarchy's `tasks`.
    let files = cgroups.node_procs("lab", "b");
    assert_eq!(files.len(), 5);
    assert!(files.iter().all(|f| f.ends_with("tasks")), "{files:?}");
    assert_eq!(cgroups.node_v2_dir("lab", "b"), None);
    let _ = fs::remove_dir_all(&base);
}

#[test]
fn removing_a_lab_keeps_other_labs_and_nslab_while_they_are_there() {
    let root = temp_root("rm");
    fs::write(root.join("cgroup.controllers"), "").unwrap();
    fs::write(root.join("cgroup.subtree_control"), "").unwrap();
    fs::create_dir(root.join("hosts-own")).unwrap();
    let cgroups = Cgroups::v2_at(&root);
    let none = Limits::default();
    cgroups
        .create_lab("one", &[("a", &none), ("b", &none)])
        .unwrap();
    cgroups.create_lab("two", &[("a", &none)]).unwrap();
    // Plain directories hold files, unlike cgroups: empty them first.
    for dir in ["one/a", "one/b", "two/a"] {
        for e in fs::read_dir(root.join("nslab").join(dir))
            .unwrap()
            .flatten()
        {
            fs::remove_file(e.path()).unwrap();
        }
    }
    let _ = fs::remove_file(root.join("nslab/cgroup.subtree_control"));
    let (removed, errors) = cgroups.remove_lab("one", Duration::from_millis(100));
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(removed, 2);
    assert!(!root.join("nslab/one").exists());
    assert!(root.join("nslab/two/a").is_dir());
    assert_eq!(cgroups.labs(), vec!["two".to_string()]);
    let (removed, errors) = cgroups.remove_lab("two", Duration::from_millis(100));
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(removed, 1);
    assert!(!root.join("nslab").exists());
    assert!(root.join("hosts-own").is_dir(), "not nslab's");
    // Nothing there: nothing to do.
    assert_eq!(cgroups.remove_lab("two", Duration::ZERO).0, 0);
    let _ = fs::remove_dir_all(&root);
}

#[test]
fn mountinfo_of_a_hybrid_and_of_a_v2_host() {
    let hybrid = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
90 41 0:38 /nested /elsewhere rw,relatime - cgroup2 cgroup2 rw
91 31 0:32 / /again/memory rw,relatime - cgroup cgroup rw,memory
";
    let c = Cgroups::from_mountinfo(hybrid);
    let found: Vec<(u8, String)> = c
        .hierarchies()
        .iter()
        .map(|h| (h.version(), h.root().display().to_string()))
        .collect();
    assert_eq!(
        found,
        vec![
            (1, "/sys/fs/cgroup/cpu".into()),
            (1, "/sys/fs/cgroup/cpuacct".into()),
            (1, "/sys/fs/cgroup/cpuset".into()),
            (1, "/sys/fs/cgroup/memory".into()),
            (1, "/sys/fs/cgroup/pids".into()),
            (2, "/sys/fs/cgroup/unified".into()),
        ]
    );
    assert!(
        c.hierarchies()[1].controllers().is_empty(),
        "cpuacct limits nothing"
    );
    assert!(c.hierarchies()[3].is_line_of("memory"));
    assert!(!c.hierarchies()[3].is_line_of("name=systemd"));
    assert!(c.hierarchies()[5].is_line_of(""));

    let joint = "29 23 0:26 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n";
    let c = Cgroups::from_mountinfo(joint);
    assert_eq!(c.hierarchies().len(), 1);
    assert!(c.hierarchies()[0].is_line_of("cpuacct,cpu"));
    assert_eq!(c.hierarchies()[0].controllers(), vec![Controller::Cpu]);

    let (_, fstype, data) = &c.mounts()[0];
    // As a node's init sees it, in its cgroup namespace.
    let inside = "52 51 0:29 /../../.. /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n";
    assert_eq!(Cgroups::from_mountinfo(inside).hierarchies().len(), 1);
    let subtree = "52 51 0:29 /user.slice /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n";
    assert!(Cgroups::from_mountinfo(subtree).hierarchies().is_empty());
    assert_eq!((*fstype, data.as_deref()), ("cgroup", Some("cpu,cpuacct")));

    let odd = "29 23 0:26 / /c/x rw - cgroup cgroup rw,cpu,net_cls,release_agent=/x\n";
    let c = Cgroups::from_mountinfo(odd);
    assert_eq!(c.mounts()[0].2.as_deref(), Some("cpu,net_cls"));
    assert!(c.hierarchies()[0].is_line_of("net_cls,cpu"));

    let v2 = "30 23 0:27 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";
    let c = Cgroups::from_mountinfo(v2);
    assert_eq!(c.hierarchies().len(), 1);
    assert_eq!(c.hierarchies()[0].root(), Path::new("/sys/fs/cgroup"));
}

#[test]
fn mountinfo_escapes() {
    assert_eq!(unescape(r"/a\040b"), "/a b");
    assert_eq!(unescape(r"/a\9"), r"/a\9");
    assert_eq!(unescape("/é\\"), "/é\\");
}
