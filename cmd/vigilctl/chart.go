package main

import (
	"fmt"
	"html"
	"strings"
)

// chartSVG draws two horizontal bar charts (verdicts by action, then the largest coverage gaps by
// provider/country) as a standalone SVG document.
func chartSVG(r kpiReport) string {
	const (
		width    = 720
		labelW   = 200
		barMaxW  = 420
		rowH     = 22
		titleH   = 34
		maxGaps  = 15
		margin   = 16
		fontFace = "font-family=\"sans-serif\" font-size=\"12\""
	)
	type bar struct {
		label string
		value float64
	}
	var verdicts, gaps []bar
	for _, v := range r.Verdicts {
		verdicts = append(verdicts, bar{v.Name, v.Count})
	}
	for i, g := range r.CoverageGaps {
		if i == maxGaps {
			break
		}
		gaps = append(gaps, bar{g.Provider + " / " + g.Country, g.Count})
	}
	panels := []struct {
		title string
		color string
		bars  []bar
	}{
		{"Verdicts by action", "#3b6ea8", verdicts},
		{fmt.Sprintf("Coverage gaps by provider / country (top %d)", maxGaps), "#c0693a", gaps},
	}
	var b strings.Builder
	y := margin
	var body strings.Builder
	for _, p := range panels {
		fmt.Fprintf(&body, "<text x=\"%d\" y=\"%d\" %s font-size=\"14\" font-weight=\"bold\">%s</text>\n",
			margin, y+18, fontFace, html.EscapeString(p.title))
		y += titleH
		if len(p.bars) == 0 {
			fmt.Fprintf(&body, "<text x=\"%d\" y=\"%d\" %s fill=\"#777\">no data</text>\n", margin, y+14, fontFace)
			y += rowH
		}
		maxV := 0.0
		for _, br := range p.bars {
			maxV = max(maxV, br.value)
		}
		for _, br := range p.bars {
			w := 0
			if maxV > 0 {
				w = int(br.value / maxV * barMaxW)
			}
			fmt.Fprintf(&body, "<text x=\"%d\" y=\"%d\" %s text-anchor=\"end\">%s</text>\n",
				margin+labelW-8, y+15, fontFace, html.EscapeString(truncate(br.label, 32)))
			fmt.Fprintf(&body, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"%s\"/>\n",
				margin+labelW, y+3, max(w, 1), rowH-6, p.color)
			fmt.Fprintf(&body, "<text x=\"%d\" y=\"%d\" %s>%s</text>\n",
				margin+labelW+max(w, 1)+6, y+15, fontFace, fmtCount(br.value))
			y += rowH
		}
		y += margin
	}
	footer := html.EscapeString(truncate(r.Note, 110))
	fmt.Fprintf(&body, "<text x=\"%d\" y=\"%d\" %s font-size=\"10\" fill=\"#555\">%s</text>\n", margin, y+4, fontFace, footer)
	height := y + margin
	fmt.Fprintf(&b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\">\n", width, height, width, height)
	fmt.Fprintf(&b, "<rect width=\"%d\" height=\"%d\" fill=\"white\"/>\n", width, height)
	b.WriteString(body.String())
	b.WriteString("</svg>\n")
	return b.String()
}
