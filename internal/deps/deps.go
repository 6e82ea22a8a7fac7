package deps
import (
 _ "github.com/mesos/mesos-go/api/v1/lib"
 _ "github.com/mesos/mesos-go/api/v1/lib/httpcli/httpsched"
 _ "github.com/mesos/mesos-go/api/v1/lib/httpcli/httpexec"
 _ "github.com/mesos/mesos-go/api/v1/lib/extras/scheduler/controller"
 _ "github.com/mesos/mesos-go/api/v1/lib/executor/config"
 _ "github.com/mesos/mesos-go/api/v1/lib/encoding/codecs"
 _ "github.com/docker/docker/client"
 _ "go.etcd.io/etcd/client/v3"
 _ "go.etcd.io/etcd/client/v3/concurrency"
 _ "go.etcd.io/etcd/server/v3/embed"
 _ "github.com/gorilla/mux"
 _ "github.com/golang/glog"
 _ "github.com/prometheus/client_golang/prometheus"
 _ "github.com/prometheus/client_golang/prometheus/promhttp"
 _ "golang.org/x/sync/errgroup"
)
