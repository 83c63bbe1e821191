# syntax=docker/dockerfile:1
#
# Container image for tresor.
#
# NOTE: this image has never been built: the machine this file was written on
# runs no Docker engine. Its build command, `cargo build --release --locked`,
# was run there (Debian bookworm, stable Rust 1.95) and succeeds.
#
#   docker build -t tresor .
#   docker run --rm tresor                      # prints `tresor serve --help`
#   docker run -p 7443:7443 -v tresor-data:/var/lib/tresor \
#     -v /etc/tresor:/etc/tresor:ro tresor serve --listen 0.0.0.0:7443 \
#     --data-dir /var/lib/tresor --master-key-file /etc/tresor/master.key \
#     --tls-cert /etc/tresor/server/cert.pem --tls-key /etc/tresor/server/key.pem \
#     --client-ca /etc/tresor/ca.pem --admin spiffe://example.org/admin
#
# The server runs as uid/gid 65532 (distroless "nonroot"). The master key file
# must be readable by that uid and have no group/other permission bits, or the
# server refuses to start. The default --listen is 127.0.0.1:7443, which is
# unreachable from outside a container: pass --listen 0.0.0.0:7443.

# ---- build ------------------------------------------------------------------
FROM rust:1-bookworm AS build
WORKDIR /src
# No protoc needed: build.rs compiles proto/ with protox (pure Rust).
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked \
 && install -D -m 0755 target/release/tresor /out/usr/local/bin/tresor \
 && install -d -m 0700 /out/var/lib/tresor

# ---- runtime ----------------------------------------------------------------
# distroless/cc: glibc, libgcc_s and CA certificates; no shell, no package manager.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/usr/local/bin/tresor /usr/local/bin/tresor
COPY --from=build --chown=65532:65532 /out/var/lib/tresor /var/lib/tresor
USER nonroot
VOLUME ["/var/lib/tresor"]
EXPOSE 7443
ENTRYPOINT ["/usr/local/bin/tresor"]
CMD ["serve", "--help"]
