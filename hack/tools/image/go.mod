// kcloud-image builds the product's container image (both static binaries on a base layer made
// here, no registry or container daemon) with go-containerregistry, from its own module graph so that
// its dependencies stay out of the product's go.mod. hack/build-image.sh builds and runs it.
module kcloud.io/optimizer/hack/tools/image

go 1.26.0

require github.com/google/go-containerregistry v0.22.1

require (
	github.com/klauspost/compress v1.19.2 // indirect
	github.com/opencontainers/go-digest v1.0.0 // indirect
	github.com/opencontainers/image-spec v1.1.1 // indirect
	golang.org/x/sync v0.22.0 // indirect
)
