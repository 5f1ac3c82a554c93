# syntax=docker/dockerfile:1
#
# An upstream image plus a static busybox at /busybox, and nothing else changed (same user,
# entrypoint, config paths). Used by docker-compose.yml for the OpenTelemetry collector
# (built FROM scratch) and Grafana Tempo (distroless): neither ships a shell or an HTTP client,
# and a compose healthcheck always runs inside the container, so without this they could not
# be probed at all. Kubernetes does not need it: its httpGet probes come from the kubelet.
#
#   docker build -f deploy/docker/probe.Dockerfile \
#     --build-arg BASE_IMAGE=grafana/tempo:2.10.8 deploy/docker

ARG BASE_IMAGE

# The musl variant is linked statically, so it runs in images that have no libc at all.
FROM busybox:1.37-musl AS probe

FROM ${BASE_IMAGE}
COPY --from=probe /bin/busybox /busybox
