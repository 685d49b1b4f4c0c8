// Package ui is the desktop app's Fyne user interface: the window that shows
// the QR code and follows the phone, the signed-in account view, and the
// settings dialog for the server URL.
//
// All sign-in logic lives in package signin; this package only renders its
// State and forwards button presses. Widgets are touched on the Fyne
// goroutine only: flow callbacks arrive through fyne.Do.
package ui

import (
	"fmt"
	"image"
	"image/color"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/qrlogin/qrlogin/desktop/signin"
	"github.com/qrlogin/qrlogin/shared/client"
)

// Controller is what the window asks of the sign-in flow; *signin.Flow
// satisfies it.
type Controller interface {
	NewCode()
	SignOut()
	Retry()
}

// WindowConfig configures a Window.
type WindowConfig struct {
	// Icon is shown in the header; nil shows none.
	Icon fyne.Resource
	// Now is the clock for countdowns; nil means time.Now.
	Now func() time.Time
	// Location is the time zone times are shown in; nil means time.Local.
	Location *time.Location
	// OnSettings is called when the settings button is pressed.
	OnSettings func()
}

// badgeGreen marks a scanned code; it sits on the white plate in every
// theme, so it is a fixed colour.
var badgeGreen = color.NRGBA{0x16, 0xa3, 0x4a, 0xff}

// Sizes of the window's fixed parts.
const (
	qrSize       = 280 // the white plate the QR code sits on
	qrPadding    = 12  // plate margin around the code's own quiet zone
	userCodeSize = 30
	avatarSize   = 88
)

// Window renders signin States into a fyne.Window.
type Window struct {
	cfg   WindowConfig
	win   fyne.Window
	ctl   Controller
	state signin.State

	settings      *widget.Button
	unencrypted   *fyne.Container // "Not encrypted": the server URL is http:// off this machine
	storageBanner *fyne.Container
	storageNotice *widget.Label
	dismissNotice *widget.Button

	// The QR view.
	login       *fyne.Container
	title       *widget.Label
	subtitle    *widget.Label
	qr          *canvas.Raster
	qrModules   [][]bool
	qrFor       string // the verify URL qrModules encode
	qrDimmed    bool
	plate       *canvas.Rectangle
	scannedMark *fyne.Container
	placeholder *fyne.Container
	placeIcon   *widget.Icon
	placeTitle  *widget.Label
	placeText   *widget.Label
	codeBox     *fyne.Container
	hint        *widget.Label
	userCode    *canvas.Text
	countdown   *widget.Label
	spinner     *widget.Activity
	statusRow   *fyne.Container
	status      *widget.Label // one short line beside the spinner
	problem     *widget.Label // a failure being retried, wrapped
	notice      *widget.Label
	newCode     *widget.Button
	retry       *widget.Button

	// The signed-in view.
	account       *fyne.Container
	avatar        *canvas.Circle
	initials      *canvas.Text
	name          *widget.Label
	username      *widget.Label
	userID        *widget.Label
	memberSince   *widget.Label
	signedInAt    *widget.Label
	device        *widget.Label
	expiry        *widget.Label
	signOut       *widget.Button
	accountStatus *widget.Label
	accountRetry  *widget.Button
}

// NewWindow builds the views into w and shows the Starting state.
func NewWindow(w fyne.Window, cfg WindowConfig) *Window {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Location == nil {
		cfg.Location = time.Local
	}
	v := &Window{cfg: cfg, win: w}
	v.buildLogin()
	v.buildAccount()

	v.settings = widget.NewButtonWithIcon("", theme.SettingsIcon(), func() {
		if v.cfg.OnSettings != nil {
			v.cfg.OnSettings()
		}
	})
	v.settings.Importance = widget.LowImportance
	appName := widget.NewLabelWithStyle("qrlogin", fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	headerItems := []fyne.CanvasObject{}
	if cfg.Icon != nil {
		logo := canvas.NewImageFromResource(cfg.Icon)
		logo.FillMode = canvas.ImageFillContain
		logo.SetMinSize(fyne.NewSquareSize(28))
		headerItems = append(headerItems, logo)
	}
	notEncrypted := widget.NewLabel("Not encrypted")
	notEncrypted.Importance = widget.WarningImportance
	notEncrypted.SizeName = theme.SizeNameCaptionText
	v.unencrypted = container.NewHBox(widget.NewIcon(theme.WarningIcon()), notEncrypted)
	v.unencrypted.Hide()
	headerItems = append(headerItems, appName, layout.NewSpacer(), v.unencrypted, v.settings)
	header := container.NewVBox(container.NewHBox(headerItems...), widget.NewSeparator())

	v.storageNotice = widget.NewLabel("")
	v.storageNotice.Wrapping = fyne.TextWrapWord
	v.storageNotice.SizeName = theme.SizeNameCaptionText
	v.dismissNotice = widget.NewButtonWithIcon("", theme.CancelIcon(), func() { v.storageBanner.Hide() })
	v.dismissNotice.Importance = widget.LowImportance
	v.storageBanner = container.NewVBox(widget.NewSeparator(), container.NewBorder(nil, nil,
		widget.NewIcon(theme.WarningIcon()), v.dismissNotice, v.storageNotice))
	v.storageBanner.Hide()

	body := container.NewStack(v.login, v.account)
	w.SetContent(container.NewBorder(header, v.storageBanner, nil, nil, container.NewPadded(body)))
	v.Render(signin.State{Phase: signin.Starting})
	return v
}

// SetController sets where button presses go.
func (v *Window) SetController(c Controller) { v.ctl = c }

func (v *Window) buildLogin() {
	v.title = widget.NewLabelWithStyle("Sign in with your phone", fyne.TextAlignCenter, fyne.TextStyle{Bold: true})
	v.title.SizeName = theme.SizeNameSubHeadingText
	v.subtitle = widget.NewLabelWithStyle("Scan this code with your phone's camera", fyne.TextAlignCenter, fyne.TextStyle{})
	v.subtitle.Wrapping = fyne.TextWrapWord

	v.qr = canvas.NewRaster(func(w, h int) image.Image {
		dark := color.Color(qrDark)
		if v.qrDimmed {
			dark = qrDimmed
		}
		return drawQR(v.qrModules, w, h, dark)
	})
	v.qr.ScaleMode = canvas.ImageScalePixels

	badge := canvas.NewCircle(badgeGreen)
	check := widget.NewIcon(theme.ConfirmIcon())
	v.scannedMark = container.NewCenter(container.NewGridWrap(fyne.NewSquareSize(72),
		container.NewStack(badge, container.NewPadded(check))))

	v.placeIcon = widget.NewIcon(theme.InfoIcon())
	v.placeTitle = widget.NewLabelWithStyle("", fyne.TextAlignCenter, fyne.TextStyle{Bold: true})
	v.placeText = widget.NewLabel("")
	v.placeText.Alignment = fyne.TextAlignCenter
	v.placeText.Wrapping = fyne.TextWrapWord
	v.placeholder = container.NewCenter(container.NewVBox(
		container.NewCenter(container.NewGridWrap(fyne.NewSquareSize(56), v.placeIcon)),
		v.placeTitle,
		container.NewGridWrap(fyne.NewSize(qrSize-40, 60), v.placeText),
	))

	v.plate = canvas.NewRectangle(qrLight)
	v.plate.CornerRadius = 14
	v.plate.StrokeWidth = 1
	qrArea := container.NewGridWrap(fyne.NewSquareSize(qrSize), container.NewStack(
		v.plate,
		container.New(layout.NewCustomPaddedLayout(qrPadding, qrPadding, qrPadding, qrPadding), v.qr),
		v.scannedMark,
		v.placeholder,
	))

	v.hint = widget.NewLabel("")
	v.hint.Alignment = fyne.TextAlignCenter
	v.hint.Wrapping = fyne.TextWrapWord
	v.userCode = canvas.NewText("", theme.Color(theme.ColorNameForeground))
	v.userCode.TextSize = userCodeSize
	v.userCode.TextStyle = fyne.TextStyle{Monospace: true}
	v.userCode.Alignment = fyne.TextAlignCenter
	v.codeBox = container.NewVBox(v.hint, v.userCode)

	v.countdown = widget.NewLabel("")
	v.countdown.Alignment = fyne.TextAlignCenter

	v.spinner = widget.NewActivity()
	v.status = widget.NewLabel("")
	v.status.Alignment = fyne.TextAlignCenter
	v.problem = widget.NewLabel("")
	v.problem.Alignment = fyne.TextAlignCenter
	v.problem.Wrapping = fyne.TextWrapWord
	v.problem.Importance = widget.DangerImportance
	v.notice = widget.NewLabel("")
	v.notice.Alignment = fyne.TextAlignCenter
	v.notice.Wrapping = fyne.TextWrapWord
	v.notice.TextStyle = fyne.TextStyle{Italic: true}

	v.newCode = widget.NewButtonWithIcon("Get a new code", theme.ViewRefreshIcon(), func() {
		if v.ctl != nil {
			v.ctl.NewCode()
		}
	})
	v.newCode.Importance = widget.HighImportance
	v.retry = widget.NewButtonWithIcon("Retry now", theme.ViewRefreshIcon(), func() {
		if v.ctl != nil {
			v.ctl.Retry()
		}
	})

	v.statusRow = container.NewCenter(container.NewHBox(v.spinner, v.status))
	v.login = container.NewVBox(
		layout.NewSpacer(),
		v.title,
		v.subtitle,
		container.NewCenter(qrArea),
		v.codeBox,
		v.countdown,
		v.statusRow,
		v.problem,
		v.notice,
		container.NewCenter(container.NewHBox(v.newCode, v.retry)),
		layout.NewSpacer(),
	)
}

func (v *Window) buildAccount() {
	v.avatar = canvas.NewCircle(theme.Color(theme.ColorNamePrimary))
	v.initials = canvas.NewText("", color.White)
	v.initials.TextSize = 34
	v.initials.TextStyle = fyne.TextStyle{Bold: true}
	v.initials.Alignment = fyne.TextAlignCenter
	avatar := container.NewCenter(container.NewGridWrap(fyne.NewSquareSize(avatarSize),
		container.NewStack(v.avatar, container.NewCenter(v.initials))))

	v.name = widget.NewLabelWithStyle("", fyne.TextAlignCenter, fyne.TextStyle{Bold: true})
	v.name.SizeName = theme.SizeNameHeadingText
	v.username = widget.NewLabel("")
	v.username.Alignment = fyne.TextAlignCenter

	value := func() *widget.Label {
		l := widget.NewLabel("")
		l.Wrapping = fyne.TextWrapWord
		l.Selectable = true
		return l
	}
	key := func(s string) *widget.Label {
		return widget.NewLabelWithStyle(s, fyne.TextAlignTrailing, fyne.TextStyle{Bold: true})
	}
	v.userID, v.memberSince, v.signedInAt, v.device, v.expiry = value(), value(), value(), value(), value()
	details := container.New(layout.NewFormLayout(),
		key("User ID"), v.userID,
		key("Member since"), v.memberSince,
		key("Signed in"), v.signedInAt,
		key("Device"), v.device,
		key("Access token"), v.expiry,
	)
	card := widget.NewCard("", "", details)

	v.signOut = widget.NewButtonWithIcon("Sign out", theme.LogoutIcon(), func() {
		if v.ctl != nil {
			v.signOut.Disable() // until the flow answers, once is enough
			v.ctl.SignOut()
		}
	})
	v.signOut.Importance = widget.MediumImportance
	v.accountStatus = widget.NewLabel("")
	v.accountStatus.Alignment = fyne.TextAlignCenter
	v.accountStatus.Wrapping = fyne.TextWrapWord
	v.accountRetry = widget.NewButtonWithIcon("Retry now", theme.ViewRefreshIcon(), func() {
		if v.ctl != nil {
			v.ctl.Retry()
		}
	})

	signedIn := widget.NewLabelWithStyle("You're signed in", fyne.TextAlignCenter, fyne.TextStyle{})
	signedIn.Importance = widget.SuccessImportance
	v.account = container.NewVBox(
		layout.NewSpacer(),
		avatar,
		v.name,
		v.username,
		signedIn,
		card,
		container.NewCenter(container.NewHBox(v.signOut, v.accountRetry)),
		v.accountStatus,
		layout.NewSpacer(),
	)
}

// Render shows st. It must run on the Fyne goroutine.
func (v *Window) Render(st signin.State) {
	v.state = st
	// Passwords are typed on the phone, but the tokens this app receives
	// cross the network in the clear too.
	showIf(v.unencrypted, client.Unencrypted(st.Server))
	if st.Phase == signin.SignedIn && st.Account != nil {
		v.win.SetTitle("qrlogin — " + st.Account.User.DisplayName)
		v.login.Hide()
		v.renderAccount(st)
		v.account.Show()
	} else {
		v.win.SetTitle("qrlogin — Sign in")
		v.account.Hide()
		v.renderLogin(st)
		v.login.Show()
	}
	v.Tick()
	// Parts were shown and hidden: lay the views out again.
	v.login.Refresh()
	v.account.Refresh()
}

func (v *Window) renderLogin(st signin.State) {
	v.signOut.Enable()
	code := st.Code
	if code != nil && code.VerifyURL != v.qrFor {
		m, err := qrModules(code.VerifyURL)
		if err != nil {
			fyne.LogError("could not draw the QR code", err)
		}
		v.qrModules, v.qrFor = m, code.VerifyURL
	}
	v.qrDimmed = st.Phase == signin.Scanned
	showIf(v.scannedMark, st.Phase == signin.Scanned)

	// White under a code in every theme (cameras want dark on light);
	// the theme's own colours around a message.
	v.plate.StrokeColor = theme.Color(theme.ColorNameSeparator)
	if code != nil {
		v.plate.FillColor = qrLight
	} else {
		v.plate.FillColor = theme.Color(theme.ColorNameInputBackground)
	}
	v.plate.Refresh()
	switch {
	case code != nil:
		v.placeholder.Hide()
		v.qr.Show()
		v.qr.Refresh()
		v.hint.SetText("Can't scan? Open " + phoneURL(code.VerifyURL, st.Server) + " and type")
		v.userCode.Text = code.UserCode
		v.userCode.Color = theme.Color(theme.ColorNameForeground)
		v.codeBox.Show()
		v.userCode.Refresh()
	default:
		v.qr.Hide()
		v.codeBox.Hide()
		v.placeholder.Show()
		v.setPlaceholder(st)
	}

	switch st.Phase {
	case signin.Scanned:
		v.title.SetText("Almost there")
		v.subtitle.SetText("Check your phone to finish signing in")
		v.codeBox.Hide()
	case signin.Cancelled, signin.Expired:
		v.title.SetText("Sign in with your phone")
		v.subtitle.SetText("Ask for a new code to try again")
	default:
		v.title.SetText("Sign in with your phone")
		v.subtitle.SetText("Scan this code with your phone's camera")
	}

	busy := false
	v.status.Importance = widget.MediumImportance
	switch st.Phase {
	case signin.Starting:
		busy = true
		v.status.SetText("Connecting to " + st.Server + "…")
	case signin.Waiting:
		busy = true
		v.status.SetText("Waiting for your phone…")
	case signin.Scanned:
		v.status.Importance = widget.SuccessImportance
		who := st.ScannedBy
		if who == "" {
			who = "your phone"
		}
		v.status.SetText("Scanned by " + who + " — confirm on your phone")
	default:
		v.status.SetText("")
	}
	v.status.Refresh()
	// A problem replaces the status line; its text is set by Tick, which
	// counts down to the retry.
	showIf(v.statusRow, v.status.Text != "" && st.Problem == nil)
	showIf(v.problem, st.Problem != nil)
	if busy && st.Problem == nil {
		v.spinner.Show()
		v.spinner.Start()
	} else {
		v.spinner.Stop()
		v.spinner.Hide()
	}
	v.notice.SetText(st.Notice)
	showIf(v.notice, st.Notice != "")
	showIf(v.newCode, st.Phase == signin.Cancelled || st.Phase == signin.Expired)
	showIf(v.retry, st.Problem != nil)
}

func (v *Window) setPlaceholder(st signin.State) {
	switch {
	case st.Phase == signin.Cancelled:
		v.placeIcon.SetResource(theme.CancelIcon())
		v.placeTitle.SetText("Sign-in cancelled")
		v.placeText.SetText("It was cancelled on the phone.")
	case st.Phase == signin.Expired:
		v.placeIcon.SetResource(theme.HistoryIcon())
		v.placeTitle.SetText("Code expired")
		v.placeText.SetText("No one scanned it in time.")
	case st.Problem != nil:
		v.placeIcon.SetResource(theme.WarningIcon())
		v.placeTitle.SetText("No connection")
		v.placeText.SetText("A code appears as soon as the server answers.")
	default:
		v.placeIcon.SetResource(theme.MoreHorizontalIcon())
		v.placeTitle.SetText("Getting a code…")
		v.placeText.SetText("")
	}
}

func (v *Window) renderAccount(st signin.State) {
	a := st.Account
	v.initials.Text = initials(a.User.DisplayName, a.User.Username)
	v.initials.Refresh()
	v.avatar.FillColor = theme.Color(theme.ColorNamePrimary)
	v.avatar.Refresh()
	name := a.User.DisplayName
	if name == "" {
		name = a.User.Username
	}
	v.name.SetText(name)
	v.username.SetText("@" + a.User.Username)
	v.userID.SetText(a.User.ID)
	if a.MemberSince.IsZero() {
		v.memberSince.SetText("—")
	} else {
		v.memberSince.SetText(a.MemberSince.In(v.cfg.Location).Format("2 January 2006"))
	}
	v.signedInAt.SetText(v.formatTime(a.SignedInAt))
	device := a.Device
	if device == "" {
		device = "this computer"
	}
	v.device.SetText(device)
	showIf(v.accountRetry, st.Problem != nil)
	if st.Notice != "" && st.Problem == nil {
		v.accountStatus.Importance = widget.WarningImportance
		v.accountStatus.SetText(st.Notice)
	}
}

// Tick updates the texts that depend on the time: the code's countdown,
// the retry countdown and the token expiry. The app calls it every second.
func (v *Window) Tick() {
	now := v.cfg.Now()
	st := v.state
	if c := st.Code; c != nil && st.Phase != signin.SignedIn {
		left := c.ExpiresAt.Sub(now)
		if left > 0 {
			secs := int((left + time.Second - 1) / time.Second)
			v.countdown.SetText(fmt.Sprintf("Code expires in %d:%02d", secs/60, secs%60))
		} else {
			v.countdown.SetText("Code expired — getting a new one…")
		}
		v.countdown.Show()
	} else {
		v.countdown.Hide()
	}
	if p := st.Problem; p != nil {
		text := problemText(p, now)
		v.problem.SetText(text)
		v.accountStatus.Importance = widget.DangerImportance
		v.accountStatus.SetText(text)
	} else if st.Phase == signin.SignedIn && st.Notice == "" {
		v.accountStatus.SetText("")
	}
	showIf(v.accountStatus, v.accountStatus.Text != "")
	if a := st.Account; a != nil && st.Phase == signin.SignedIn {
		v.expiry.SetText(fmt.Sprintf("Valid until %s · renews automatically", v.formatClock(a.AccessExpiresAt)))
	}
}

func problemText(p *signin.Problem, now time.Time) string {
	left := p.RetryAt.Sub(now)
	if left <= 0 {
		return p.Text + ", retrying…"
	}
	return fmt.Sprintf("%s, retrying in %ds…", p.Text, int((left+time.Second-1)/time.Second))
}

// formatTime shows a moment with its date: "Mon 3 Mar 2025, 10:04".
func (v *Window) formatTime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.In(v.cfg.Location).Format("Mon 2 Jan 2006, 15:04")
}

// formatClock shows a time of day, with the date when it is not today.
func (v *Window) formatClock(t time.Time) string {
	lt, now := t.In(v.cfg.Location), v.cfg.Now().In(v.cfg.Location)
	if lt.YearDay() == now.YearDay() && lt.Year() == now.Year() {
		return lt.Format("15:04:05")
	}
	return lt.Format("Mon 15:04")
}

// ShowStorageNotice says, once, that no keychain works and the sign-in is
// kept in a private file instead.
func (v *Window) ShowStorageNotice(path string) {
	if home, err := os.UserHomeDir(); err == nil && home != "" && strings.HasPrefix(path, home+string(filepath.Separator)) {
		path = "~" + path[len(home):]
	}
	v.storageNotice.SetText("No system keychain is available, so your sign-in is kept in a file only you can read: " + path)
	v.storageBanner.Show()
}

// HideStorageNotice takes the notice back: the sign-in is in the keychain
// after all.
func (v *Window) HideStorageNotice() { v.storageBanner.Hide() }

// phoneURL is where a phone types the user code: the verify URL without
// its session id, e.g. http://192.168.1.20:8080/m. The verify URL carries
// the server's public address, which phones can reach even when the
// desktop talks to 127.0.0.1.
func phoneURL(verifyURL, server string) string {
	u, err := url.Parse(verifyURL)
	if err != nil || u.Host == "" {
		return strings.TrimRight(server, "/") + "/m"
	}
	if i := strings.LastIndex(u.Path, "/"); i > 0 {
		u.Path = u.Path[:i]
	}
	u.RawQuery, u.Fragment = "", ""
	return u.String()
}

// initials is what the avatar shows: the first letters of the first two
// words of the name.
func initials(displayName, username string) string {
	words := strings.Fields(displayName)
	if len(words) == 0 {
		words = []string{username}
	}
	var out []rune
	for _, w := range words {
		r := []rune(w)
		if len(r) > 0 {
			out = append(out, r[0])
		}
		if len(out) == 2 {
			break
		}
	}
	return strings.ToUpper(string(out))
}

func showIf(o fyne.CanvasObject, show bool) {
	if show {
		o.Show()
	} else {
		o.Hide()
	}
}
