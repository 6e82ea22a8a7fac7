package dockerlib

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/distribution/reference"
	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/image"
	"github.com/golang/glog"
)

// ImageInfo is what InspectImage reports about a local image.
type ImageInfo struct {
	ID      string
	Tags    []string
	Labels  map[string]string
	Created time.Time
}

// InspectImage reports a local image. A missing image gives an error for
// which IsNotFound is true.
func (c *Client) InspectImage(ctx context.Context, ref string) (ImageInfo, error) {
	if err := validateRef(ref); err != nil {
		return ImageInfo{}, err
	}
	resp, err := c.api.ImageInspect(ctx, ref)
	if err != nil {
		return ImageInfo{}, fmt.Errorf("inspect image %s: %w", ref, err)
	}
	info := ImageInfo{ID: resp.ID, Tags: resp.RepoTags, Created: parseEngineTime(resp.Created)}
	if resp.Config != nil {
		info.Labels = resp.Config.Labels
	}
	return info, nil
}

// ImageExists reports whether the image is present locally.
func (c *Client) ImageExists(ctx context.Context, ref string) (bool, error) {
	_, err := c.InspectImage(ctx, ref)
	switch {
	case err == nil:
		return true, nil
	case IsNotFound(err):
		return false, nil
	default:
		return false, err
	}
}

// EnsureImage makes sure the image is present locally, pulling it when it is
// not. The error names the image and why it is missing, e.g.
// "image redis:7 not present and could not be pulled: ...", fit to be the
// message of a TASK_FAILED.
func (c *Client) EnsureImage(ctx context.Context, ref string) error {
	ok, err := c.ImageExists(ctx, ref)
	if err != nil {
		return err
	}
	if ok {
		return nil
	}
	glog.V(1).Infof("dockerlib: image %s not present, pulling", ref)
	if err := c.pull(ctx, ref); err != nil {
		return fmt.Errorf("image %s not present and could not be pulled: %w", ref, err)
	}
	// A pull of a multi-platform image can succeed without leaving one that
	// runs here; check what the create will need.
	if ok, err := c.ImageExists(ctx, ref); err != nil {
		return err
	} else if !ok {
		return fmt.Errorf("image %s not present after pulling it", ref)
	}
	glog.Infof("dockerlib: pulled image %s", ref)
	return nil
}

func (c *Client) pull(ctx context.Context, ref string) error {
	rc, err := c.api.ImagePull(ctx, ref, image.PullOptions{})
	if err != nil {
		return err
	}
	defer rc.Close()
	_, err = readProgress(rc, 0)
	return err
}

// RemoveImage deletes a local image (by reference or ID) when no container
// uses it; untagged parents go too. Removing a missing image is not an error.
func (c *Client) RemoveImage(ctx context.Context, ref string) error {
	_, err := c.api.ImageRemove(ctx, ref, image.RemoveOptions{PruneChildren: true})
	if err != nil && !IsNotFound(err) {
		return fmt.Errorf("remove image %s: %w", ref, err)
	}
	return nil
}

// BuildImage builds an image tagged tag from a tar stream holding a
// Dockerfile at its root and the files it copies, with labels added. It uses
// the engine's classic builder, which needs no session and no registry for
// FROM scratch. The error carries the builder's last output lines.
func (c *Client) BuildImage(ctx context.Context, tag string, buildContext io.Reader, labels map[string]string) (ImageInfo, error) {
	if err := validateRef(tag); err != nil {
		return ImageInfo{}, err
	}
	resp, err := c.api.ImageBuild(ctx, buildContext, build.ImageBuildOptions{
		Tags:        []string{tag},
		Labels:      labels,
		Remove:      true,
		ForceRemove: true,
		NetworkMode: "none",
		Version:     build.BuilderV1,
	})
	if err != nil {
		return ImageInfo{}, fmt.Errorf("build image %s: %w", tag, err)
	}
	defer resp.Body.Close()
	if tail, err := readProgress(resp.Body, 10); err != nil {
		return ImageInfo{}, fmt.Errorf("build image %s: %w (builder output: %s)", tag, err, strings.Join(tail, " | "))
	}
	info, err := c.InspectImage(ctx, tag)
	if err != nil {
		return ImageInfo{}, fmt.Errorf("build image %s: built, but: %w", tag, err)
	}
	glog.V(1).Infof("dockerlib: built image %s (%s)", tag, info.ID)
	return info, nil
}

func validateRef(ref string) error {
	if _, err := reference.ParseAnyReference(ref); err != nil || strings.TrimSpace(ref) == "" {
		return fmt.Errorf("image reference %q is invalid: %v", ref, err)
	}
	return nil
}

// progressMessage is one JSON message of a pull or build answer stream.
type progressMessage struct {
	Stream      string `json:"stream"`
	Status      string `json:"status"`
	Error       string `json:"error"`
	ErrorDetail *struct {
		Message string `json:"message"`
	} `json:"errorDetail"`
}

// readProgress drains a pull or build stream, returning the first error the
// engine reports in it and the last keep lines of output.
func readProgress(r io.Reader, keep int) ([]string, error) {
	var tail []string
	dec := json.NewDecoder(r)
	for {
		var m progressMessage
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return tail, nil
			}
			return tail, fmt.Errorf("read engine progress: %w", err)
		}
		if m.ErrorDetail != nil && m.ErrorDetail.Message != "" {
			return tail, errors.New(m.ErrorDetail.Message)
		}
		if m.Error != "" {
			return tail, errors.New(m.Error)
		}
		line := strings.TrimSpace(m.Stream)
		if line == "" {
			line = strings.TrimSpace(m.Status)
		}
		if line == "" {
			continue
		}
		glog.V(2).Infof("dockerlib: engine: %s", line)
		if keep > 0 {
			tail = append(tail, line)
			if len(tail) > keep {
				tail = tail[1:]
			}
		}
	}
}
