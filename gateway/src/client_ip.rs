//! The client's IP for rate limiting. `X-Forwarded-For` is believed only
//! when the peer is a trusted proxy, and then only up to the first hop that
//! is not one: a client cannot pick its own rate-limit key.

use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;

/// The networks of the load balancers in front of the gateway.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Trusts the given networks.
    pub fn new(nets: Vec<IpNet>) -> Self {
        Self(nets)
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|n| n.contains(&ip))
    }

    /// The client address: the peer, or, behind trusted proxies, the
    /// rightmost `X-Forwarded-For` entry that is not a trusted proxy.
    pub fn client_ip(&self, peer: SocketAddr, headers: &http::HeaderMap) -> IpAddr {
        let mut ip = peer.ip();
        if !self.trusts(ip) {
            return ip;
        }
        let hops = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect::<Vec<_>>();
        for hop in hops.into_iter().rev() {
            match hop.parse::<IpAddr>() {
                Ok(hop_ip) => {
                    ip = hop_ip;
                    if !self.trusts(hop_ip) {
                        break;
                    }
                }
                // A garbled entry ends the chain we can believe.
                Err(_) => break,
            }
        }
        ip
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &str) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        h.insert("x-forwarded-for", xff.parse().unwrap());
        h
    }

    #[test]
    fn an_untrusted_peer_cannot_choose_its_address() {
        let proxies = TrustedProxies::new(vec!["10.0.0.0/8".parse().unwrap()]);
        let peer: SocketAddr = "203.0.113.7:5000".parse().unwrap();
        assert_eq!(proxies.client_ip(peer, &headers("1.2.3.4")), peer.ip());
    }

    #[test]
    fn behind_a_trusted_proxy_the_last_untrusted_hop_is_the_client() {
        let proxies = TrustedProxies::new(vec!["10.0.0.0/8".parse().unwrap()]);
        let peer: SocketAddr = "10.0.0.2:5000".parse().unwrap();
        let ip = proxies.client_ip(peer, &headers("6.6.6.6, 198.51.100.9, 10.0.0.3"));
        assert_eq!(ip, "198.51.100.9".parse::<IpAddr>().unwrap());
    }
}
