#!/usr/bin/env python3
"""Write a synthetic kmetal repository of N tenants, for benchmarks.

    python3 benches/gen_fleet.py N DIR

Variety, deterministic for a given N: three MetalLB pools (tenants without a
VIP take theirs from the first, the site's default pool), about a quarter of the tenants with an explicit
VIP, the rest allocated; dedicated PostgreSQL and etcd datastores; one to three
worker pools with per-pool machine-size overrides; several Kubernetes versions
and machine sizes; tenants spread over sub-directories.
"""
import ipaddress
import os
import random
import sys

SITE = """apiVersion: kmetal.io/v1alpha1
kind: Site
name: bench
bootstrapServer: 10.10.0.10
bootImages:
  v1.33.4: registry.example.com/capk/ubuntu-2404-container-disk:v1.33.4
  v1.34.0: registry.example.com/capk/ubuntu-2404-container-disk:v1.34.0
  v1.34.2: registry.example.com/capk/ubuntu-2404-container-disk:v1.34.2
defaults:
  kubernetesVersion: v1.34.1
  machineSize: small
  controlPlaneReplicas: 2
metallb:
  namespace: kmetal-metallb
  pools:
    - name: pool-a
      addresses: [172.16.0.0/17]
    - name: pool-b
      addresses: [172.17.0.1-172.17.63.254]
    - name: pinned
      addresses: [172.18.0.0/18]
      autoAssign: false
dataStores:
  - name: pg-1
    driver: PostgreSQL
    endpoints: [pg-1-rw.kmetal-cnpg.svc:5432]
    basicAuth: {{ secret: pg-1-auth, namespace: kmetal-kamaji }}
    tls:
      ca: {{ secret: pg-1-ca, namespace: kmetal-kamaji }}
  - name: etcd-2
    driver: etcd
    endpoints: [etcd-2-0.kmetal-kamaji.svc:2379, etcd-2-1.kmetal-kamaji.svc:2379]
    tls:
      ca: {{ secret: etcd-2-ca, namespace: kmetal-kamaji }}
      client: {{ secret: etcd-2-client, namespace: kmetal-kamaji }}
certManager:
  clusterIssuers:
    - name: letsencrypt-prod
      acme:
        email: platform@example.com
        server: https://acme-v02.api.letsencrypt.org/directory
        http01IngressClass: haproxy
  certificates:
    - name: console-tls
      namespace: kmetal-console
      dnsNames: [console.example.com]
      issuer: letsencrypt-prod
flux:
  namespace: kmetal-flux
  sourceRef: {{ kind: GitRepository, name: fleet }}
  interval: 10m
"""

VERSIONS = ["v1.33.4", "v1.33.5", "v1.34.0", "v1.34.1", "v1.34.2"]
SIZES = ["small", "medium", "large"]


def tenant(i, rng, pinned):
    name = f"t{i:05d}"
    lines = ["apiVersion: kmetal.io/v1alpha1", "kind: Tenant", f"name: {name}"]
    if rng.random() < 0.3:
        lines.append(f"kubernetesVersion: {rng.choice(VERSIONS)}")
    if rng.random() < 0.3:
        lines.append(f"machineSize: {rng.choice(SIZES)}")
    lines.append("controlPlane:")
    if rng.random() < 0.2:
        lines.append("  replicas: 3")
    if i % 4 == 0:
        lines.append(f"  vip: {pinned}")
    elif i % 3 == 0:
        lines.append("  pool: pool-b")
    lines.append(f"  certSANs: [{name}.k8s.example.com]")
    store = rng.random()
    if store < 0.1:
        lines.append("  dataStore: pg-1")
    elif store < 0.15:
        lines.append("  dataStore: etcd-2")
    lines.append("workers:")
    for w in range(rng.randint(1, 3)):
        lines.append(f"  - name: md-{w}")
        lines.append(f"    replicas: {rng.randint(1, 5)}")
        if w > 0:
            lines.append(f"    machineSize: {rng.choice(SIZES)}")
    return name, "\n".join(lines) + "\n"


def main():
    n, root = int(sys.argv[1]), sys.argv[2]
    rng = random.Random(n)
    os.makedirs(os.path.join(root, "tenants"), exist_ok=True)
    with open(os.path.join(root, "kmetal.yaml"), "w") as f:
        f.write(SITE.format())
    pinned = ipaddress.ip_address("172.18.0.1")
    for i in range(n):
        name, text = tenant(i, rng, pinned + i // 4)
        group = os.path.join(root, "tenants", f"g{i % 50:02d}")
        os.makedirs(group, exist_ok=True)
        with open(os.path.join(group, f"{name}.yaml"), "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
