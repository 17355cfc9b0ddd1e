package mailcatch

import (
	"bytes"
	"encoding/base64"
	"html/template"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/http"
	"net/mail"
	"net/textproto"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// maxPartDepth bounds how deeply nested multiparts are walked.
const maxPartDepth = 8

// inboxCSP keeps the inbox pages free of scripts and outside resources.
const inboxCSP = "default-src 'none'; style-src 'unsafe-inline'"

// htmlPartCSP serves a caught HTML part in an opaque, script-less sandbox:
// the mail's markup is untrusted and must not act as the inbox's origin.
const htmlPartCSP = "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:"

// Handler returns a small web inbox for the caught mail: GET / lists the
// messages newest first, GET /m/{i} shows message i with its text part, and
// GET /m/{i}/html serves its HTML part in a sandbox. Links between the pages
// are relative, so the handler can be mounted under a prefix with
// http.StripPrefix.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.serveList)
	mux.HandleFunc("GET /m/{i}", s.serveMessage)
	mux.HandleFunc("GET /m/{i}/html", s.serveHTMLPart)
	return mux
}

// listEntry is one row of the inbox list.
type listEntry struct {
	Index    int
	Received string
	To       string
	Subject  string
}

func (s *Server) serveList(w http.ResponseWriter, _ *http.Request) {
	msgs := s.Messages()
	entries := make([]listEntry, 0, len(msgs))
	for i := len(msgs) - 1; i >= 0; i-- {
		p := parse(msgs[i].Data)
		entries = append(entries, listEntry{
			Index:    i,
			Received: msgs[i].Received.Format(time.DateTime),
			To:       strings.Join(msgs[i].To, ", "),
			Subject:  p.subject,
		})
	}
	render(w, listPage, entries)
}

// messageView is what the message page shows.
type messageView struct {
	Index    int
	Received string
	Subject  string
	Headers  [][2]string
	Envelope string
	Text     []segment
	HasHTML  bool
}

func (s *Server) serveMessage(w http.ResponseWriter, r *http.Request) {
	i, m, ok := s.lookup(r)
	if !ok {
		http.NotFound(w, r)
		return
	}
	p := parse(m.Data)
	v := messageView{
		Index:    i,
		Received: m.Received.Format(time.DateTime),
		Subject:  p.subject,
		Envelope: m.From + " → " + strings.Join(m.To, ", "),
		Text:     linkify(p.text),
		HasHTML:  p.html != "",
	}
	for _, name := range []string{"From", "To", "Date", "Message-ID", "Auto-Submitted"} {
		if value := p.header.Get(name); value != "" {
			v.Headers = append(v.Headers, [2]string{name, decodeHeader(value)})
		}
	}
	render(w, messagePage, v)
}

func (s *Server) serveHTMLPart(w http.ResponseWriter, r *http.Request) {
	_, m, ok := s.lookup(r)
	if !ok {
		http.NotFound(w, r)
		return
	}
	p := parse(m.Data)
	if p.html == "" {
		http.NotFound(w, r)
		return
	}
	setPageHeaders(w.Header(), htmlPartCSP)
	_, _ = io.WriteString(w, p.html)
}

// lookup finds the message named by the {i} path segment.
func (s *Server) lookup(r *http.Request) (int, Message, bool) {
	i, err := strconv.Atoi(r.PathValue("i"))
	if err != nil {
		return 0, Message{}, false
	}
	m, ok := s.message(i)
	return i, m, ok
}

func render(w http.ResponseWriter, t *template.Template, data any) {
	var buf bytes.Buffer
	if err := t.Execute(&buf, data); err != nil {
		http.Error(w, "rendering page failed", http.StatusInternalServerError)
		return
	}
	setPageHeaders(w.Header(), inboxCSP)
	_, _ = buf.WriteTo(w)
}

// setPageHeaders marks a page as HTML under the given policy. Caught mail
// holds live reset links, so pages are neither cached nor sent as referrer.
func setPageHeaders(h http.Header, csp string) {
	h.Set("Content-Security-Policy", csp)
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
}

// parsed holds the readable pieces of a message.
type parsed struct {
	header  mail.Header
	subject string
	text    string
	html    string
}

// parse extracts the subject and the first text/plain and text/html parts,
// decoding quoted-printable and base64. A message that does not parse is
// shown as raw text.
func parse(data []byte) parsed {
	msg, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		return parsed{header: mail.Header{}, text: string(data)}
	}
	p := parsed{header: msg.Header, subject: decodeHeader(msg.Header.Get("Subject"))}
	p.walk(textproto.MIMEHeader(msg.Header), msg.Body, 0)
	return p
}

func (p *parsed) walk(h textproto.MIMEHeader, body io.Reader, depth int) {
	mediaType, params, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil {
		// RFC 2045: a missing or broken Content-Type means plain text
		mediaType = "text/plain"
	}
	if strings.HasPrefix(mediaType, "multipart/") {
		if depth >= maxPartDepth || params["boundary"] == "" {
			return
		}
		mr := multipart.NewReader(body, params["boundary"])
		for {
			// the raw part keeps its transfer encoding, so decoding stays in
			// one place below for parts and single-part messages alike
			part, err := mr.NextRawPart()
			if err != nil {
				return
			}
			p.walk(part.Header, part, depth+1)
		}
	}
	if mediaType != "text/plain" && mediaType != "text/html" {
		return
	}
	b, err := io.ReadAll(decodeTransfer(h.Get("Content-Transfer-Encoding"), body))
	if err != nil && len(b) == 0 {
		return
	}
	text := strings.ToValidUTF8(string(b), "\uFFFD")
	switch {
	case mediaType == "text/plain" && p.text == "":
		p.text = text
	case mediaType == "text/html" && p.html == "":
		p.html = text
	}
}

func decodeTransfer(encoding string, r io.Reader) io.Reader {
	switch strings.ToLower(strings.TrimSpace(encoding)) {
	case "base64":
		// the decoder skips the line breaks between base64 lines
		return base64.NewDecoder(base64.StdEncoding, r)
	case "quoted-printable":
		return quotedprintable.NewReader(r)
	}
	return r
}

func decodeHeader(v string) string {
	var dec mime.WordDecoder
	if decoded, err := dec.DecodeHeader(v); err == nil {
		return decoded
	}
	return v
}

// segment is a run of text, or a link when URL is set.
type segment struct {
	Text string
	URL  string
}

var urlPattern = regexp.MustCompile(`https?://[^\s<>"]+`)

// linkify splits text into plain runs and http(s) links. Punctuation that
// usually ends a sentence is kept out of the link.
func linkify(text string) []segment {
	var out []segment
	for text != "" {
		loc := urlPattern.FindStringIndex(text)
		if loc == nil {
			out = append(out, segment{Text: text})
			break
		}
		link := strings.TrimRight(text[loc[0]:loc[1]], ".,;:!?)]}'")
		if loc[0] > 0 {
			out = append(out, segment{Text: text[:loc[0]]})
		}
		out = append(out, segment{Text: link, URL: link})
		text = text[loc[0]+len(link):]
	}
	return out
}

const pageHead = `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body { font: 15px/1.45 system-ui, sans-serif; margin: 1.5rem auto; max-width: 60rem;
  padding: 0 1rem; color: #1f2328; }
table { border-collapse: collapse; width: 100%; }
td, th { text-align: left; padding: .35rem .6rem; border-bottom: 1px solid #d0d7de; }
pre { white-space: pre-wrap; overflow-wrap: anywhere; background: #f6f8fa; padding: 1rem; }
dt { font-weight: 600; } dd { margin: 0 0 .4rem 0; }
</style>`

var listPage = template.Must(template.New("list").Parse(pageHead + `
<title>Caught mail</title></head><body>
<h1>Caught mail</h1>
{{if .}}<table>
<tr><th>Received</th><th>To</th><th>Subject</th></tr>
{{range .}}<tr><td>{{.Received}}</td><td>{{.To}}</td>
<td><a href="m/{{.Index}}">{{or .Subject "(no subject)"}}</a></td></tr>
{{end}}</table>
{{else}}<p>No mail caught yet.</p>{{end}}
</body></html>
`))

var messagePage = template.Must(template.New("message").Parse(pageHead + `
<title>{{or .Subject "(no subject)"}}</title></head><body>
<p><a href="../">All mail</a></p>
<h1>{{or .Subject "(no subject)"}}</h1>
<dl>
<dt>Received</dt><dd>{{.Received}}</dd>
<dt>Envelope</dt><dd>{{.Envelope}}</dd>
{{range .Headers}}<dt>{{index . 0}}</dt><dd>{{index . 1}}</dd>
{{end}}</dl>
{{if .HasHTML}}<p><a href="{{.Index}}/html">View the HTML part</a> (sandboxed)</p>{{end}}
<pre>{{range .Text}}{{if .URL -}}
<a href="{{.URL}}" rel="noreferrer">{{.Text}}</a>
{{- else}}{{.Text}}{{end}}{{end}}</pre>
</body></html>
`))
