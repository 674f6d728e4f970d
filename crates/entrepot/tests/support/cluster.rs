//! Several `entrepot serve` nodes as one registry on loopback: one
//! PostgreSQL database, one Garage bucket, and Debian's nginx in front as a
//! round-robin balancer. Also nginx as a throttling proxy, for an upstream
//! slow enough to kill a node in the middle of a download.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::garage::Garage;
use super::postgres::{postgres_database, TestDatabase};
use super::server::Entrepot;
use super::upstream::free_port;

/// Debian's nginx, if installed.
pub fn nginx_binary() -> Option<PathBuf> {
    ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

/// An nginx of the test's own: one process, its files in a temporary
/// directory, an access log that names the backend of each request.
pub struct Nginx {
    child: Option<Child>,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    dir: tempfile::TempDir,
}

impl Nginx {
    /// nginx on a free loopback port with `http` as its `http { }` block
    /// body, where `LISTEN` stands for the listen address; `None` (after
    /// printing why) when nginx is not installed.
    fn start(http: &str) -> Option<Nginx> {
        let Some(bin) = nginx_binary() else {
            eprintln!("SKIPPED: nginx is not installed (apt-get install nginx)");
            return None;
        };
        let dir = tempfile::Builder::new()
            .prefix("entrepot-nginx-")
            .tempdir()
            .unwrap();
        let addr = format!("127.0.0.1:{}", free_port());
        let d = dir.path().display();
        let conf = format!(
            "daemon off;\nmaster_process off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
             events {{ worker_connections 4096; }}\n\
             http {{\n\
               log_format backend '$remote_addr \"$request\" $status $body_bytes_sent upstream=$upstream_addr';\n\
               access_log {d}/access.log backend;\n\
               client_body_temp_path {d}/body; proxy_temp_path {d}/proxy;\n\
               fastcgi_temp_path {d}/fastcgi; uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;\n\
               {}\n\
             }}\n",
            http.replace("LISTEN", &addr)
        );
        let file = dir.path().join("nginx.conf");
        fs::write(&file, conf).unwrap();
        let child = Command::new(bin)
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot start nginx");
        let nginx = Nginx {
            child: Some(child),
            addr,
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(&nginx.addr).is_err() {
            assert!(
                Instant::now() < deadline,
                "nginx did not start:\n{}",
                nginx.error_log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(nginx)
    }

    /// A round-robin balancer over `backends` (`127.0.0.1:PORT` each):
    /// every request goes to the next backend, whatever connection it came
    /// on, so one client's requests land on every node in turn. Bodies
    /// stream both ways, unbuffered.
    pub fn balancer(backends: &[&str]) -> Option<Nginx> {
        let servers: String = backends
            .iter()
            .map(|b| format!("server {b} max_fails=0;"))
            .collect();
        Self::start(&format!(
            "upstream nodes {{ {servers} keepalive 32; }}\n\
             server {{\n\
               listen LISTEN;\n\
               client_max_body_size 0;\n\
               proxy_request_buffering off; proxy_buffering off;\n\
               proxy_read_timeout 300s; proxy_send_timeout 300s;\n\
               location / {{\n\
                 proxy_pass http://nodes;\n\
                 proxy_http_version 1.1;\n\
                 proxy_set_header Connection \"\";\n\
                 proxy_set_header Host $http_host;\n\
                 proxy_next_upstream off;\n\
               }}\n\
             }}"
        ))
    }

    /// A proxy to `backend` that sends response bodies at most `rate`
    /// (nginx's `limit_rate`, e.g. `2m` for 2 MiB/s) after the first
    /// `burst` bytes: a slow upstream. Buffered: nginx ignores `limit_rate`
    /// on unbuffered proxied responses.
    pub fn throttle(backend: &str, rate: &str, burst: &str) -> Option<Nginx> {
        Self::start(&format!(
            "server {{\n\
               listen LISTEN;\n\
               client_max_body_size 0;\n\
               location / {{\n\
                 proxy_pass http://{backend};\n\
                 proxy_http_version 1.1;\n\
                 proxy_set_header Host $http_host;\n\
                 limit_rate {rate};\n\
                 limit_rate_after {burst};\n\
               }}\n\
             }}"
        ))
    }

    /// The access log so far: `CLIENT "REQUEST" STATUS BYTES upstream=BACKEND`.
    pub fn access_log(&self) -> String {
        fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default()
    }

    /// How many `GET path` requests the access log shows (logged as each
    /// ends, broken off or not).
    pub fn gets_of(&self, path: &str) -> usize {
        let needle = format!("\"GET {path} ");
        self.access_log()
            .lines()
            .filter(|l| l.contains(&needle))
            .count()
    }

    /// nginx's error log, for failure messages.
    pub fn error_log(&self) -> String {
        fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Nodes sharing one PostgreSQL database and one Garage bucket, behind one
/// balancer. Node 0 started first and created the bootstrap admin; the
/// others got its master key and registry token signing key before they
/// started, as docs/deploy.md tells an operator to do.
pub struct Cluster {
    /// `None` once killed.
    nodes: Vec<Option<Entrepot>>,
    /// The round-robin balancer over every node.
    pub balancer: Nginx,
    /// The shared bucket's server.
    pub garage: Garage,
    /// The shared database.
    pub database: Arc<TestDatabase>,
    /// The admin's token, the same on every node.
    pub admin_token: String,
    /// The data directories of the nodes after the first.
    _dirs: tempfile::TempDir,
}

/// The files every node of a cluster must share (docs/deploy.md).
const SHARED_FILES: [&str; 2] = ["master.key", "registry-token-key"];

impl Cluster {
    /// `n` nodes with `env` set on each; `None` (after printing SKIPPED and
    /// why) when PostgreSQL (`ENTREPOT_TEST_POSTGRES_URL`), Garage or nginx
    /// is not there.
    pub fn start(n: usize, env: &[(&str, &str)]) -> Option<Cluster> {
        let Some(database) = postgres_database() else {
            eprintln!("SKIPPED: no PostgreSQL test server (set ENTREPOT_TEST_POSTGRES_URL)");
            return None;
        };
        nginx_binary().or_else(|| {
            eprintln!("SKIPPED: nginx is not installed (apt-get install nginx)");
            None
        })?;
        let garage = Garage::start("cluster")?;
        let builder = |data: Option<&Path>| {
            let mut b = Entrepot::builder().postgres(database.clone());
            for (k, v) in garage.server_env() {
                b = b.env(k, &v);
            }
            if let Some(data) = data {
                b = b.data_dir(data);
            }
            b.envs(env)
        };
        let dirs = tempfile::Builder::new()
            .prefix("entrepot-cluster-")
            .tempdir()
            .unwrap();
        let first = builder(None).start();
        let admin_token = first.admin_token.clone();
        let mut nodes = vec![Some(first)];
        for i in 1..n {
            let data = dirs.path().join(format!("node-{i}"));
            fs::create_dir_all(&data).unwrap();
            for file in SHARED_FILES {
                let from = nodes[0].as_ref().unwrap().data_dir.join(file);
                fs::copy(&from, data.join(file))
                    .unwrap_or_else(|e| panic!("node {i} needs {}: {e}", from.display()));
            }
            // The admin exists already: the harness keeps its token beside
            // the data directory, where it finds the first start's.
            fs::write(data.with_extension("admin-token"), &admin_token).unwrap();
            nodes.push(Some(builder(Some(&data)).start()));
        }
        let addrs: Vec<String> = nodes
            .iter()
            .map(|n| n.as_ref().unwrap().addr.clone())
            .collect();
        let addrs: Vec<&str> = addrs.iter().map(String::as_str).collect();
        let balancer = Nginx::balancer(&addrs)?;
        Some(Cluster {
            nodes,
            balancer,
            garage,
            database,
            admin_token,
            _dirs: dirs,
        })
    }

    /// Node `i`; panics if it was killed.
    pub fn node(&self, i: usize) -> &Entrepot {
        self.nodes[i].as_ref().expect("the node was killed")
    }

    /// How many nodes were started.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Kill node `i` with SIGKILL: no shutdown, no lease released.
    pub fn kill(&mut self, i: usize) {
        if let Some(node) = self.nodes[i].take() {
            let status = Command::new("kill")
                .args(["-KILL", &node.pid().to_string()])
                .status()
                .unwrap();
            assert!(status.success());
            drop(node);
        }
    }

    /// `USER:TOKEN` of the admin, for skopeo.
    pub fn creds(&self) -> String {
        format!("admin:{}", self.admin_token)
    }

    /// Every node's log, for failure messages.
    pub fn logs(&self) -> String {
        self.nodes
            .iter()
            .enumerate()
            .filter_map(|(i, n)| {
                n.as_ref()
                    .map(|n| format!("--- node {i} ---\n{}", n.log_text()))
            })
            .collect()
    }
}
