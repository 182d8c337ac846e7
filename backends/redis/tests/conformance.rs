//! The conformance suite against a real redis-server and a real 3-master
//! Cluster, each started by the tests on free loopback ports.

mod common;

use std::sync::OnceLock;

use rampart::testkit::Harness;

/// One server for the whole suite: tests keep to their own namespaces.
fn server() -> &'static common::Server {
    static SERVER: OnceLock<common::Server> = OnceLock::new();
    SERVER.get_or_init(common::Server::start)
}

fn cluster() -> &'static common::Cluster {
    static CLUSTER: OnceLock<common::Cluster> = OnceLock::new();
    CLUSTER.get_or_init(common::Cluster::start)
}

mod standalone {
    use super::*;
    rampart::conformance_suite!(Harness::real(server().store()));
}

mod cluster {
    use super::*;
    rampart::conformance_suite!(Harness::real(cluster().store()));
}
