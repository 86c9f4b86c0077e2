//! The gateway's HTTP/1.1 framing rules, tested on their own: the module's unit tests run here
//! because an example's own tests are not run by `cargo test`.

#[allow(dead_code, unreachable_pub)]
#[path = "../examples/gateway/http1/framing.rs"]
mod framing;
