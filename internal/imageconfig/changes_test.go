package imageconfig

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
)

func TestApplyChanges(t *testing.T) {
	tests := []struct {
		name    string
		start   string // config JSON
		changes []string
		want    string // config JSON
		wantErr string
	}{
		{name: "none", start: `{"User":"x"}`, want: `{"User":"x"}`},
		{name: "cmd exec form", changes: []string{`CMD ["sh"]`}, want: `{"Cmd":["sh"]}`},
		{name: "cmd shell form", changes: []string{"CMD echo $HOME hi"}, want: `{"Cmd":["/bin/sh","-c","echo $HOME hi"]}`},
		{name: "cmd under SHELL", start: `{"Shell":["/bin/bash","-c"]}`, changes: []string{"CMD ls"},
			want: `{"Cmd":["/bin/bash","-c","ls"],"Shell":["/bin/bash","-c"]}`},
		{name: "entrypoint resets cmd", start: `{"Cmd":["old"]}`, changes: []string{`ENTRYPOINT ["top"]`}, want: `{"Entrypoint":["top"]}`},
		{name: "entrypoint keeps cmd set before", changes: []string{`CMD ["-b"]`, `ENTRYPOINT ["top"]`}, want: `{"Entrypoint":["top"],"Cmd":["-b"]}`},
		{name: "env set, replaced, expanded", start: `{"Env":["PATH=/bin","A=1"]}`, changes: []string{"ENV A=b", "ENV B=${A}c C=$PATH"},
			want: `{"Env":["PATH=/bin","A=b","B=bc","C=/bin"]}`},
		{name: "env legacy form", changes: []string{"ENV K two words"}, want: `{"Env":["K=two words"]}`},
		{name: "env several pairs", changes: []string{`ENV X=1 Y="two words"`}, want: `{"Env":["X=1","Y=two words"]}`},
		{name: "workdir relative and expanded", changes: []string{"ENV D=sub", "WORKDIR /app", "WORKDIR $D/x"},
			want: `{"Env":["D=sub"],"WorkingDir":"/app/sub/x"}`},
		{name: "expose with ranges and variables", changes: []string{"ENV P=\"80 443/udp\"", "EXPOSE $P 8000-8001"},
			want: `{"Env":["P=80 443/udp"],"ExposedPorts":{"80/tcp":{},"443/udp":{},"8000/tcp":{},"8001/tcp":{}}}`},
		{name: "user", changes: []string{"USER 1000:1000"}, want: `{"User":"1000:1000"}`},
		{name: "label", start: `{"Labels":{"a":"1"}}`, changes: []string{`LABEL b=2 "c d"="e f"`}, want: `{"Labels":{"a":"1","b":"2","c d":"e f"}}`},
		{name: "volume", changes: []string{`VOLUME ["/data", "/logs"]`, "VOLUME /x"}, want: `{"Volumes":{"/data":{},"/logs":{},"/x":{}}}`},
		{name: "stopsignal", changes: []string{"STOPSIGNAL SIGINT"}, want: `{"StopSignal":"SIGINT"}`},
		{name: "onbuild", changes: []string{"ONBUILD RUN make"}, want: `{"OnBuild":["RUN make"]}`},
		{name: "healthcheck", changes: []string{"HEALTHCHECK --interval=5s CMD true"},
			want: `{"Healthcheck":{"Test":["CMD-SHELL","true"],"Interval":5000000000}}`},
		{name: "lower case instruction", changes: []string{"user nobody"}, want: `{"User":"nobody"}`},
		{name: "run refused", changes: []string{"RUN true"}, wantErr: "RUN is not a valid change command"},
		{name: "from refused", changes: []string{"FROM busybox"}, wantErr: "FROM is not a valid change command"},
		{name: "bad signal", changes: []string{"STOPSIGNAL SIGNOPE"}, wantErr: "Invalid signal: SIGNOPE"},
		{name: "bad port", changes: []string{"EXPOSE 80/xyz"}, wantErr: "invalid proto: xyz"},
		{name: "empty volume", changes: []string{`VOLUME [""]`}, wantErr: "VOLUME specified can not be an empty string"},
		{name: "env without value", changes: []string{"ENV K"}, wantErr: "ENV must have two arguments"},
		{name: "onbuild onbuild", changes: []string{"ONBUILD ONBUILD RUN x"}, wantErr: "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var start dockerspec.DockerOCIImageConfig
			if tt.start != "" {
				if err := json.Unmarshal([]byte(tt.start), &start); err != nil {
					t.Fatal(err)
				}
			}
			got, err := ApplyChanges(start, tt.changes)
			if tt.wantErr != "" {
				if err == nil || !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want invalid argument %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var want dockerspec.DockerOCIImageConfig
			if err := json.Unmarshal([]byte(tt.want), &want); err != nil {
				t.Fatal(err)
			}
			g, _ := json.Marshal(got)
			w, _ := json.Marshal(want)
			if string(g) != string(w) {
				t.Errorf("got  %s\nwant %s", g, w)
			}
		})
	}
}
