# syntax=docker/dockerfile:1
# swarm as a container, for any CI:
#   docker run --rm -v "$PWD:/work" swarm check plans/smoke.yaml --target http://host:8080
# Tagged swarm:<crate version> (docker build -t swarm:0.1.0 .) it is the image that
# `swarm k8s` manifests run by default (docs/kubernetes.md).
# Build stage: the release binary (rustls, so no OpenSSL at run time).
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked \
    && cp target/release/swarm /usr/local/bin/swarm

# Run stage: glibc and libgcc only, no shell, running as an unprivileged user.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /usr/local/bin/swarm /usr/local/bin/swarm
USER 65532:65532
WORKDIR /work
ENTRYPOINT ["/usr/local/bin/swarm"]
CMD ["--help"]
