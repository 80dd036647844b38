"""Every user-visible string of the web view, in Vietnamese and English.

One catalogue serves the server-side templates and, embedded as JSON in the page,
the refresh script (static/live.js), so the two never disagree on wording.
"""

from __future__ import annotations

LANGS = ("vi", "en")
DEFAULT_LANG = "vi"
LANG_COOKIE = "lang"

CATALOGUE: dict[str, dict[str, str]] = {
    # Page frame
    "lang.name": {"vi": "Tiếng Việt", "en": "English"},
    "page.subtitle": {
        "vi": "Chỉ số hiệu quả sử dụng năng lượng (PUE) theo ISO/IEC 30134-2, "
              "số liệu trực tuyến từ công tơ và UPS",
        "en": "Power usage effectiveness (PUE) per ISO/IEC 30134-2, "
              "live from meters and UPS units"},
    "updated": {"vi": "Số liệu lúc", "en": "Data as of"},
    "live.static": {"vi": "Trang tự tải lại mỗi 30 giây", "en": "Page reloads every 30 s"},
    "live.on": {"vi": "Tự động cập nhật mỗi {n} giây", "en": "Live, refreshed every {n} s"},
    "live.off": {"vi": "Mất kết nối máy chủ – số liệu có thể đã cũ",
                 "en": "Server unreachable – figures may be out of date"},
    "legend.title": {"vi": "Ký hiệu", "en": "Legend"},
    "legend.yes": {"vi": "đạt ngưỡng xanh", "en": "meets the green threshold"},
    "legend.no": {"vi": "PUE cao hơn ngưỡng xanh", "en": "PUE above the green threshold"},
    "legend.none": {"vi": "không đánh giá (thiếu dữ liệu, số liệu cũ hoặc không hợp lệ)",
                    "en": "not assessed (incomplete, stale or invalid data)"},
    "sites.none": {"vi": "Chưa cấu hình trung tâm dữ liệu nào.",
                   "en": "No data center is configured."},
    "error.unavailable": {"vi": "Tạm thời không tính được số liệu. Vui lòng thử lại sau.",
                          "en": "The figures cannot be computed right now. Please try again."},

    # People and access (web/auth.py, templates/_account.html, templates/login.html)
    "auth.title": {"vi": "Đăng nhập", "en": "Log in"},
    "auth.intro": {"vi": "Đăng nhập để xem số liệu các trung tâm dữ liệu của đơn vị bạn.",
                   "en": "Log in to see the figures of your organisation's data centers."},
    "auth.user": {"vi": "Tên đăng nhập", "en": "User name"},
    "auth.password": {"vi": "Mật khẩu", "en": "Password"},
    "auth.submit": {"vi": "Đăng nhập", "en": "Log in"},
    "auth.logout": {"vi": "Đăng xuất", "en": "Log out"},
    "auth.failed": {"vi": "Sai tên đăng nhập hoặc mật khẩu.",
                    "en": "Wrong user name or password."},
    "auth.wait": {"vi": "Quá nhiều lần đăng nhập sai. Vui lòng thử lại sau {n} giây.",
                  "en": "Too many failed log-ins. Please try again in {n} s."},
    "auth.as": {"vi": "Đăng nhập: {name} ({role})", "en": "Logged in as {name} ({role})"},
    "auth.open": {"vi": "Đăng nhập đang tắt: ai truy cập được trang này đều xem được mọi "
                        "trung tâm dữ liệu.",
                  "en": "Log-in is switched off: anyone who can reach this page sees every "
                        "data center."},
    "auth.none": {"vi": "Tài khoản của bạn chưa được giao trung tâm dữ liệu nào.",
                  "en": "No data center is assigned to your account."},
    "urole.operator": {"vi": "vận hành", "en": "operator"},
    "urole.auditor": {"vi": "kiểm tra", "en": "auditor"},
    "urole.admin": {"vi": "quản trị", "en": "admin"},

    # Site header
    "kind.provincial": {"vi": "TTDL cấp tỉnh", "en": "Provincial data center"},
    "kind.attracted": {"vi": "TTDL thu hút đầu tư", "en": "Attracted-investment data center"},
    "threshold": {"vi": "Ngưỡng TTDL xanh", "en": "Green threshold"},
    "devices_up": {"vi": "Thiết bị hoạt động", "en": "Devices up"},

    # Figures
    "fig.instant": {"vi": "PUE tức thời", "en": "Instantaneous PUE"},
    "fig.instant.sub": {"vi": "tức thời, theo công suất", "en": "instantaneous, from power"},
    "fig.instant.note": {"vi": "Chỉ để tham khảo; PUE theo tiêu chuẩn là tỉ số điện năng.",
                         "en": "Indicative only; the standard PUE is an energy ratio."},
    "fig.window.sub": {"vi": "tỉ số điện năng", "en": "energy ratio"},
    "win.15m": {"vi": "15 phút gần nhất", "en": "Last 15 minutes"},
    "win.1h": {"vi": "1 giờ gần nhất", "en": "Last hour"},
    "win.24h": {"vi": "24 giờ gần nhất", "en": "Last 24 hours"},
    "win.today": {"vi": "Hôm nay", "en": "Today"},
    "win.30d": {"vi": "30 ngày gần nhất", "en": "Last 30 days"},
    "win.12m": {"vi": "12 tháng gần nhất", "en": "Last 12 months"},
    "risk.yes": {"vi": "Năm {year}: dự báo PUE {pue}, có nguy cơ vượt ngưỡng",
                 "en": "{year}: projected PUE {pue}, at risk of exceeding the threshold"},
    "risk.no": {"vi": "Năm {year}: dự báo PUE {pue}, trong ngưỡng",
                "en": "{year}: projected PUE {pue}, within the threshold"},
    "risk.none": {"vi": "Chưa đủ số liệu để dự báo năm", "en": "Not enough data to project the year"},
    # Why a year is not projected (pue.atrisk refusals) and what a projection rests on.
    "risk.refused.no_figure": {"vi": "Năm {year}: không dự báo, chưa có số liệu đo",
                               "en": "{year}: no forecast, nothing measured yet"},
    "risk.refused.not_judged": {
        "vi": "Năm {year}: không dự báo, PUE từ đầu năm chưa được đánh giá ({status})",
        "en": "{year}: no forecast, the year-so-far PUE is not judged ({status})"},
    "risk.refused.too_short": {
        "vi": "Năm {year}: không dự báo, mới đo {days} ngày trên {min} ngày cần có",
        "en": "{year}: no forecast, {days} measured days of the {min} needed"},
    "risk.basis": {"vi": " (dựa trên {days} ngày đo, độ phủ {coverage})",
                   "en": " (from {days} measured days, coverage {coverage})"},
    "fig.status": {"vi": "Trạng thái", "en": "Status"},
    "fig.coverage": {"vi": "Độ phủ dữ liệu", "en": "Coverage"},
    "fig.energy": {"vi": "Điện năng TTDL / CNTT", "en": "Energy facility / IT"},
    "fig.period": {"vi": "Khoảng thời gian", "en": "Period"},
    "fig.at": {"vi": "Thời điểm", "en": "At"},
    "fig.power": {"vi": "Công suất TTDL / CNTT", "en": "Power facility / IT"},
    "power.facility": {"vi": "Công suất toàn TTDL", "en": "Facility power"},
    "power.it": {"vi": "Công suất thiết bị CNTT", "en": "IT power"},

    # Status of a figure (pue.kpi / pue.instant)
    "status.ok": {"vi": "Hợp lệ", "en": "Valid"},
    "status.incomplete": {"vi": "Thiếu dữ liệu", "en": "Incomplete"},
    "status.invalid": {"vi": "Không hợp lệ", "en": "Invalid"},
    "status.no_data": {"vi": "Không có dữ liệu", "en": "No data"},
    "status.stale": {"vi": "Số liệu cũ", "en": "Stale"},

    # Compliance verdict; the mark is part of the text so it survives without colour.
    "verdict.yes": {"vi": "✓ Đạt", "en": "✓ Compliant"},
    "verdict.no": {"vi": "✗ Vượt ngưỡng", "en": "✗ Over threshold"},
    "verdict.none": {"vi": "○ Không đánh giá", "en": "○ Not assessed"},

    # PUE categories (ISO/IEC 30134-2: where IT energy is measured)
    "cat.PUE1": {"vi": "PUE1: CNTT đo tại đầu ra UPS", "en": "PUE1: IT measured at UPS output"},
    "cat.PUE2": {"vi": "PUE2: CNTT đo tại đầu ra PDU", "en": "PUE2: IT measured at PDU output"},
    "cat.PUE3": {"vi": "PUE3: CNTT đo tại đầu vào thiết bị",
                 "en": "PUE3: IT measured at equipment input"},

    # Device table
    "dev.title": {"vi": "Tình trạng thiết bị đo", "en": "Metering device health"},
    "dev.id": {"vi": "Mã", "en": "ID"},
    "dev.name": {"vi": "Tên", "en": "Name"},
    "dev.role": {"vi": "Vai trò", "en": "Role"},
    "dev.endpoint": {"vi": "Giao thức / địa chỉ", "en": "Protocol endpoint"},
    "dev.state": {"vi": "Trạng thái", "en": "State"},
    "dev.last_ok": {"vi": "Đọc thành công gần nhất", "en": "Last successful poll"},
    "dev.duration": {"vi": "Thời gian đọc", "en": "Poll duration"},
    "dev.errors": {"vi": "Số lỗi theo loại", "en": "Errors by kind"},
    "dev.last_error": {"vi": "Lỗi gần nhất", "en": "Last error"},
    "up.true": {"vi": "● Hoạt động", "en": "● Up"},
    "up.false": {"vi": "● Mất kết nối", "en": "● Down"},
    "up.null": {"vi": "○ Chưa đọc", "en": "○ Not polled yet"},
    # Device health states (store.model.HealthState).
    "state.up": {"vi": "● Hoạt động", "en": "● Up"},
    "state.degraded": {"vi": "◐ Suy giảm (số đọc lỗi, kẹt, bất thường hoặc bộ đếm đặt lại)",
                       "en": "◐ Degraded (readings undecodable, stuck, implausible or "
                             "counter reset)"},
    "state.down": {"vi": "● Mất kết nối", "en": "● Down"},
    "state.unknown": {"vi": "○ Chưa đọc", "en": "○ Not polled yet"},
    "errors.none": {"vi": "không", "en": "none"},

    # Error kinds (store.model.ErrorKind); unknown kinds are shown as they are.
    # The alert history of a site page (figures.alerts records it)
    "events.title": {"vi": "Lịch sử cảnh báo", "en": "Alert history"},
    "events.note": {"vi": "Hệ thống giám sát tự ghi: thiết bị đổi trạng thái; PUE 24 giờ "
                          "(đến khối 15 phút gần nhất) vượt ngưỡng hoặc trở lại trong ngưỡng.",
                    "en": "Recorded by the monitor itself: a device changing state; the "
                          "24-hour PUE (to the last 15-minute block) going over its threshold "
                          "or back within it."},
    "events.none": {"vi": "Không có cảnh báo nào trong {n} ngày qua.",
                    "en": "No alert in the last {n} days."},
    "events.when": {"vi": "Thời điểm", "en": "When"},
    "events.what": {"vi": "Đối tượng", "en": "What"},
    "events.state": {"vi": "Sự kiện", "en": "Event"},
    "events.detail": {"vi": "Chi tiết", "en": "Detail"},
    "events.pue": {"vi": "PUE {window}", "en": "PUE, {window}"},
    "event.up": {"vi": "Hoạt động trở lại", "en": "Up again"},
    "event.degraded": {"vi": "Suy giảm", "en": "Degraded"},
    "event.down": {"vi": "Mất kết nối", "en": "Down"},
    "event.over": {"vi": "Vượt ngưỡng", "en": "Over the threshold"},
    "event.within": {"vi": "Trở lại trong ngưỡng", "en": "Back within the threshold"},
    "err.timeout": {"vi": "hết thời gian chờ", "en": "timeout"},
    "err.connection": {"vi": "kết nối", "en": "connection"},
    "err.auth": {"vi": "xác thực", "en": "auth"},
    "err.decode": {"vi": "giải mã", "en": "decode"},
    "err.device_error": {"vi": "thiết bị báo lỗi", "en": "device error"},

    # Roles (config.metrics.Role)
    "role.facility": {"vi": "Tổng TTDL", "en": "Facility"},
    "role.it": {"vi": "CNTT", "en": "IT"},
    "role.exclude": {"vi": "Loại trừ", "en": "Excluded load"},
    "role.cooling": {"vi": "Làm mát", "en": "Cooling"},
    "role.power_distribution": {"vi": "Phân phối điện", "en": "Power distribution"},
    "role.lighting": {"vi": "Chiếu sáng", "en": "Lighting"},
    "role.other": {"vi": "Khác", "en": "Other"},
    "role.monitor": {"vi": "Chỉ giám sát", "en": "Monitor only"},

    # Ages (floored), used for "last successful poll"
    "age.s": {"vi": "{n} giây trước", "en": "{n} s ago"},
    "age.min": {"vi": "{n} phút trước", "en": "{n} min ago"},
    "age.h": {"vi": "{n} giờ trước", "en": "{n} h ago"},
    "age.d": {"vi": "{n} ngày trước", "en": "{n} d ago"},

    # Footer
    "foot.method": {
        "vi": "PUE = điện năng toàn TTDL ÷ điện năng thiết bị CNTT, tính trên cùng khoảng "
              "thời gian mà mọi công tơ đều có số liệu (ISO/IEC 30134-2).",
        "en": "PUE = total facility energy ÷ IT equipment energy, over the time every meter "
              "has data (ISO/IEC 30134-2)."},
    "foot.judged": {
        "vi": "Chỉ số liệu hợp lệ (đủ độ phủ dữ liệu) mới được đánh giá đạt hay vượt ngưỡng; "
              "số liệu thiếu hiển thị màu xám và không được đánh giá.",
        "en": "Only valid figures (enough data coverage) are judged against the threshold; "
              "incomplete figures are shown in grey and not judged."},
    "foot.api": {"vi": "Dữ liệu máy đọc được", "en": "Machine-readable data"},
    "nav.reports": {"vi": "Báo cáo kiểm tra", "en": "Audit reports"},
    "nav.overview": {"vi": "Tổng quan trực tuyến", "en": "Live overview"},
    "reports.title": {"vi": "Báo cáo PUE theo kỳ", "en": "PUE reports by period"},
    "reports.intro": {
        "vi": "Báo cáo tính từ điện năng đo được (ISO/IEC 30134-2), kèm số liệu từng công tơ "
              "và mã kiểm tra SHA-256 để cơ quan thẩm định tự tính lại. Chỉ đọc.",
        "en": "Reports computed from measured energy (ISO/IEC 30134-2), with per-meter figures "
              "and a SHA-256 digest so an auditor can recompute them. Read-only."},
    "reports.all": {"vi": "Tất cả trung tâm dữ liệu", "en": "All data centers"},
    "reports.year": {"vi": "Năm {year}", "en": "Year {year}"},
    "reports.month": {"vi": "Tháng này", "en": "This month"},
    "reports.12m": {"vi": "12 tháng gần nhất", "en": "Last 12 months"},
    "reports.custom": {"vi": "Kỳ khác", "en": "Other period"},
    "reports.pick": {"vi": "Chọn ngày", "en": "Pick the dates"},
    "reports.pick_help": {"vi": "Cả ngày đầu và ngày cuối đều được tính, theo giờ địa phương "
                                "của trung tâm dữ liệu.",
                          "en": "The first and the last day are both included, in the data "
                                "center's local time."},
    "reports.quarters": {"vi": "Theo quý", "en": "By quarter"},
    "reports.period_help": {
        "vi": "Ví dụ: 2025, 2025-Q1, 2025-03, 2025-03-14, 12m, 2025-01-01..2025-07-01",
        "en": "E.g. 2025, 2025-Q1, 2025-03, 2025-03-14, 12m, 2025-01-01..2025-07-01"},
    "reports.format": {"vi": "Định dạng", "en": "Format"},
    "reports.show": {"vi": "Xem báo cáo", "en": "Show report"},
    "reports.bad": {"vi": "Không lập được báo cáo", "en": "Cannot make the report"},
    "reports.busy": {
        "vi": "Máy chủ đang lập các báo cáo dài khác: hãy thử lại sau {s} giây",
        "en": "The server is busy with other long reports: try again in {s} s"},
    "reports.no_pdf": {
        "vi": "Máy chủ này chưa tạo được PDF: cần cài {hint}. Trong lúc chờ, hãy mở báo cáo "
              "HTML và in ra A4 (Ctrl+P)",
        "en": "This server cannot make PDFs yet: install {hint}. Meanwhile, open the HTML "
              "report and print it to A4 (Ctrl+P)"},
    "reports.timed_out": {
        "vi": "Báo cáo này cần quá nhiều thời gian: hãy chọn kỳ ngắn hơn, hoặc thử lại "
              "sau {s} giây",
        "en": "This report takes too long: ask for a shorter period, or try again in {s} s"},

    # Printable audit report (`pue-monitor report --format html`, web.report_render.py)
    "rep.title": {"vi": "Báo cáo chỉ số hiệu quả sử dụng năng lượng (PUE)",
                  "en": "Power usage effectiveness (PUE) report"},
    "rep.province": {"vi": "Tổng hợp các trung tâm dữ liệu", "en": "All data centers"},
    "rep.site": {"vi": "Trung tâm dữ liệu", "en": "Data center"},
    # The province figure (pue.province): one ratio of sums over the judged sites.
    "prov.pue": {"vi": "PUE toàn tỉnh (Σ E_DC / Σ E_IT các TTDL được đánh giá)",
                 "en": "Province PUE (Σ E_DC / Σ E_IT over the judged data centers)"},
    "prov.window": {"vi": "Khoảng thời gian", "en": "Window"},
    "prov.judged.short": {"vi": "TTDL được đánh giá", "en": "Data centers judged"},
    "prov.compliant": {"vi": "Đạt ngưỡng", "en": "Compliant"},
    "prov.judged": {"vi": "Được đánh giá: {judged}/{sites} TTDL · đạt ngưỡng: {compliant}",
                    "en": "Judged: {judged} of {sites} data centers · compliant: {compliant}"},
    "prov.not_judged": {"vi": "Chưa đánh giá được (và lý do)",
                        "en": "Not judged (and why)"},
    "prov.refused": {"vi": "Không gộp được các kỳ báo cáo khác nhau",
                     "en": "Periods differ: not combined"},
    "rep.period": {"vi": "Kỳ báo cáo", "en": "Reporting period"},
    "rep.timezone": {"vi": "múi giờ", "en": "time zone"},
    "rep.generated": {"vi": "Lập lúc", "en": "Generated at"},
    "rep.pue": {"vi": "PUE (tỉ số điện năng)", "en": "PUE (energy ratio)"},
    "rep.category": {"vi": "Loại PUE", "en": "PUE category"},
    "rep.verdict": {"vi": "Đánh giá", "en": "Verdict"},
    "rep.energy": {"vi": "Điện năng", "en": "Energy"},
    "rep.facility": {"vi": "Điện năng toàn TTDL (E_DC)", "en": "Total facility energy (E_DC)"},
    "rep.it": {"vi": "Điện năng thiết bị CNTT (E_IT)", "en": "IT equipment energy (E_IT)"},
    "rep.dcie": {"vi": "DCiE (100 ÷ PUE)", "en": "DCiE (100 ÷ PUE)"},
    "rep.kpis": {"vi": "Các chỉ số khác", "en": "Other indicators"},
    "kpi.ppue_cooling": {"vi": "pPUE làm mát", "en": "Cooling pPUE"},
    "kpi.ppue_power_distribution": {"vi": "pPUE phân phối điện",
                                    "en": "Power distribution pPUE"},
    "kpi.ref": {"vi": "REF (tỉ lệ năng lượng tái tạo)", "en": "REF (renewable energy factor)"},
    "kpi.erf": {"vi": "ERF (tỉ lệ tái sử dụng năng lượng)", "en": "ERF (energy reuse factor)"},
    "kpi.wue": {"vi": "WUE (lít/kWh CNTT)", "en": "WUE (litres per IT kWh)"},
    "kpi.wue_not_whole": {
        "vi": "chỉ tính khi đồng hồ nước và các đồng hồ PUE đo đủ cả kỳ: nước {water}, "
              "PUE {common}",
        "en": "given only when the water meters and the PUE's meters measured the whole "
              "period: water {water}, PUE {common}"},
    "kpi.cue": {"vi": "CUE (kg CO₂/kWh CNTT)", "en": "CUE (kg CO₂ per IT kWh)"},
    "kpi.factor": {"vi": "hệ số phát thải lưới điện {f} kg CO₂/kWh (năm {y})",
                   "en": "grid emission factor {f} kg CO₂/kWh ({y})"},
    "rep.balance": {"vi": "Cân bằng điện năng", "en": "Energy balance"},
    "bal.submetered": {"vi": "E_IT + các công tơ phụ", "en": "E_IT + sub-meters"},
    "bal.unexplained": {"vi": "Phần chưa giải thích được", "en": "Unexplained"},
    "bal.flagged": {"vi": "⚠ Vượt dung sai: kiểm tra công tơ thiếu, gán sai vai trò hoặc tỉ lệ",
                    "en": "⚠ Beyond tolerance: look for an unmetered load, a mis-assigned "
                          "meter or a wrong share"},
    "bal.ok": {"vi": "Trong dung sai", "en": "Within tolerance"},
    "rep.meters": {"vi": "Số liệu từng công tơ", "en": "Per-meter figures"},
    "met.point": {"vi": "Điểm đo", "en": "Measurement point"},
    "met.share": {"vi": "Tỉ lệ thuộc TTDL", "en": "Share"},
    "met.method": {"vi": "Phương pháp", "en": "Method"},
    "met.common": {"vi": "Đo được trong thời gian chung", "en": "Of the common time"},
    "met.resets": {"vi": "Lần đặt lại bộ đếm", "en": "Counter resets"},
    "met.flags": {"vi": "Cờ chất lượng số liệu", "en": "Data-quality flags"},
    # Flag groups of method 3 (pue.quality.COUNTED).
    "flag.reset": {"vi": "đặt lại", "en": "reset"},
    "flag.step_back": {"vi": "lùi số", "en": "step-back"},
    "flag.wrap": {"vi": "tràn vòng", "en": "wrap"},
    "flag.stuck": {"vi": "kẹt", "en": "stuck"},
    "flag.implausible": {"vi": "bất thường", "en": "implausible"},
    "method.counter": {"vi": "bộ đếm điện năng", "en": "energy counter"},
    "method.power_integration": {"vi": "tích phân công suất", "en": "integrated power"},
    "method.none": {"vi": "không có số liệu", "en": "no data"},
    "mp.ups_output": {"vi": "đầu ra UPS", "en": "UPS output"},
    "mp.pdu_output": {"vi": "đầu ra PDU", "en": "PDU output"},
    "mp.it_input": {"vi": "đầu vào thiết bị CNTT", "en": "IT equipment input"},
    "role.renewable": {"vi": "Năng lượng tái tạo", "en": "Renewable"},
    "role.reuse": {"vi": "Năng lượng tái sử dụng", "en": "Energy reuse"},
    "role.water": {"vi": "Nước", "en": "Water"},
    "rep.outages": {"vi": "Thời gian monitor không thu thập số liệu",
                    "en": "When the monitor was not collecting"},
    "rep.outages.none": {"vi": "Monitor thu thập suốt kỳ báo cáo.",
                         "en": "The monitor collected throughout the period."},
    "rep.outages.total": {
        "vi": "Tổng cộng {hours} giờ ({share}); số lần chạy của monitor trong kỳ: {runs}. "
              "Bộ đếm có thể nối qua các khoảng này, nhưng monitor không đọc số liệu nào "
              "trong đó.",
        "en": "In all {hours} h ({share}); runs of the monitor in the period: {runs}. "
              "Counters may bridge these spans, but the monitor read nothing in them."},
    "rep.outages.more": {"vi": "… và {n} khoảng khác", "en": "… and {n} more spans"},
    "rep.settings": {"vi": "Thiết lập từng công tơ (đầu kỳ)",
                     "en": "Settings of each meter (at the period's start)"},
    "rep.changes": {"vi": "Thay đổi thiết lập trong kỳ", "en": "Changes of settings in the period"},
    "rep.changes.none": {"vi": "Không có thay đổi thiết lập nào trong kỳ.",
                         "en": "No setting changed within the period."},
    "rep.setting": {"vi": "Thiết lập", "en": "Setting"},
    "rep.change": {"vi": "Cũ → mới", "en": "Old → new"},
    "set.role": {"vi": "Vai trò", "en": "Role"},
    "set.share": {"vi": "Tỉ lệ thuộc TTDL", "en": "Share"},
    "set.measurement_point": {"vi": "Điểm đo", "en": "Measurement point"},
    "set.counter_width_kwh": {"vi": "Dải bộ đếm (kWh)", "en": "Counter width (kWh)"},
    "set.max_gap_s": {"vi": "Khoảng trống tối đa (s)", "en": "Maximum gap (s)"},
    "set.interval_s": {"vi": "Chu kỳ đọc (s)", "en": "Poll interval (s)"},
    "set.replacements": {"vi": "Thay công tơ", "en": "Replacements"},
    "set.reset_below_fraction": {"vi": "Ngưỡng đặt lại", "en": "Reset below"},
    "set.rated_max_w": {"vi": "Công suất định mức tối đa (W)", "en": "Rated maximum (W)"},
    "set.stuck_power_polls": {"vi": "Số lần đọc kẹt", "en": "Stuck-power polls"},
    "set.profile": {"vi": "Hồ sơ thiết bị", "en": "Profile"},
    "rep.from": {"vi": "Từ", "en": "From"},
    "rep.to": {"vi": "Đến", "en": "To"},
    "rep.hours": {"vi": "Số giờ", "en": "Hours"},
    "rep.months": {"vi": "Theo tháng", "en": "By month"},
    "rep.months.chart": {"vi": "PUE từng tháng so với ngưỡng", "en": "PUE of each month "
                                                                       "against the threshold"},
    "rep.print": {"vi": "In (A4): Ctrl+P", "en": "Print (A4): Ctrl+P"},
    "rep.pdf": {"vi": "Tải PDF (A4)", "en": "Download PDF (A4)"},
    "rep.method.other": {"vi": "Phương pháp (tiếng Anh)", "en": "Method (in Vietnamese)"},
    # Periods as people write them (web.report_parts)
    "per.year": {"vi": "Năm {y}", "en": "Year {y}"},
    "per.quarter": {"vi": "Quý {roman} năm {y}", "en": "Q{q} {y}"},
    "per.month": {"vi": "Tháng {m} năm {y}", "en": "{name} {y}"},
    "per.day": {"vi": "Ngày {d}", "en": "{d}"},
    "per.12m": {"vi": "12 tháng gần nhất", "en": "Last 12 months"},
    # The signature block
    "sig.prepared": {"vi": "Người lập báo cáo", "en": "Prepared by"},
    "sig.approved": {"vi": "Người phê duyệt", "en": "Approved by"},
    "sig.hint": {"vi": "(ký, ghi rõ họ tên)", "en": "(signature and full name)"},
    "sig.name": {"vi": "Họ và tên", "en": "Name"},
    "sig.date": {"vi": "Ngày", "en": "Date"},
    "rep.month": {"vi": "Tháng", "en": "Month"},
    "rep.method": {"vi": "Phương pháp tính", "en": "Method"},
    "rep.method.earlier": {
        "vi": "Các khối 15 phút sau đây của kỳ này được tính theo một phương pháp PUE trước "
              "đây: số đọc gốc của chúng đã bị xóa theo thời hạn lưu giữ trước khi phương "
              "pháp thay đổi, nên không thể tính lại.",
        "en": "These 15-minute blocks of this period were computed by an earlier PUE method: "
              "their raw readings had been deleted by retention before the method changed, "
              "so they could not be computed again."},
    "rep.method.earlier.row": {"vi": "{device}: các khối trước {until} theo {method}",
                               "en": "{device}: blocks before {until} by {method}"},
    "rep.method.earlier.span": {"vi": "{device}: các khối từ {since} đến trước {until} theo "
                                      "{method}",
                                "en": "{device}: blocks from {since} until {until} by {method}"},
    "rep.method.earlier.mark": {"vi": "có khối tính theo phương pháp trước đây, xem Phương "
                                      "pháp tính",
                                "en": "includes blocks of an earlier method, see Method"},
    "rep.method.text": {
        "vi": "PUE = (Σ điện năng tổng TTDL − Σ phụ tải loại trừ) ÷ Σ điện năng CNTT, tính "
              "trên cùng những khoảng thời gian mà mọi công tơ tổng, CNTT và loại trừ đều có "
              "số liệu; không lấy trung bình các tỉ số. Điện năng lấy từ bộ đếm (nội suy tại "
              "mốc kỳ, xử lý đặt lại, tràn và thay công tơ) hoặc tích phân công suất; khoảng "
              "mất số liệu dài không được ước lượng. Chỉ số liệu hợp lệ với độ phủ đạt ngưỡng "
              "mới được đánh giá, trên giá trị PUE làm tròn hai chữ số thập phân.",
        "en": "PUE = (Σ facility energy − Σ excluded loads) ÷ Σ IT energy, over the spans in "
              "which every facility, IT and excluded meter has data; never a mean of ratios. "
              "Energy comes from counters (interpolated at the period's boundaries; resets, "
              "wraps and meter replacements handled) or from integrated power; long gaps are "
              "not estimated. Only a valid figure with enough coverage is judged, on the PUE "
              "as published with two decimals."},
    "rep.digest": {"vi": "Mã kiểm tra SHA-256 của dữ liệu đầu vào",
                   "en": "SHA-256 digest of the inputs"},
    "rep.digest.how": {
        "vi": "Tính lại: lấy đối tượng \"inputs\" của báo cáo JSON (cùng lệnh với "
              "--format json), ghi dạng JSON với khóa sắp xếp, không khoảng trắng, ASCII, rồi "
              "băm SHA-256:",
        "en": "To recompute: take the \"inputs\" object of the JSON report (the same command "
              "with --format json), write it as JSON with sorted keys, no spaces, ASCII, and "
              "hash it with SHA-256:"},
    "rep.inputs": {"vi": "Dữ liệu đầu vào (inputs)", "en": "Inputs"},
    # Province overview, site and device pages, charts (web/pages.py, static/charts.js)
    "mark.green": {"vi": "✓ Xanh", "en": "✓ Green"},
    "mark.at_risk": {"vi": "▲ Có nguy cơ", "en": "▲ At risk"},
    "mark.over": {"vi": "✗ Vượt ngưỡng", "en": "✗ Over threshold"},
    "mark.not_judged": {"vi": "○ Không đánh giá", "en": "○ Not judged"},
    "prov.title": {"vi": "Toàn tỉnh", "en": "Province"},
    "prov.figure": {"vi": "PUE toàn tỉnh (12 tháng, các TTDL được đánh giá)",
                    "en": "Province PUE (12 months, judged data centers)"},
    "prov.green": {"vi": "{n}/{m} trung tâm dữ liệu đạt ngưỡng xanh",
                   "en": "{n} of {m} data centers green"},
    "prov.site": {"vi": "Trung tâm dữ liệu", "en": "Data center"},
    "prov.instant": {"vi": "Tức thời", "en": "Live"},
    "prov.mark": {"vi": "Đánh giá", "en": "Mark"},
    "prov.spark": {"vi": "30 ngày", "en": "30 days"},
    "prov.sort": {"vi": "Bấm tiêu đề cột để sắp xếp", "en": "Click a column heading to sort"},
    "chart.pue": {"vi": "PUE theo thời gian", "en": "PUE over time"},
    "chart.pue.note": {
        "vi": "Mỗi điểm là tỉ số điện năng của khoảng đó; khoảng thiếu số liệu để trống, "
              "không nội suy. Đường ngang là ngưỡng xanh.",
        "en": "Each point is the energy ratio of its interval; intervals without data are "
              "left as gaps, never interpolated. The flat line is the green threshold."},
    "chart.power": {"vi": "Công suất trung bình theo vai trò (kW)",
                    "en": "Mean power by role (kW)"},
    "chart.device_power": {"vi": "Công suất trung bình (kW)", "en": "Mean power (kW)"},
    "chart.range": {"vi": "Khoảng thời gian", "en": "Range"},
    "chart.threshold": {"vi": "Ngưỡng", "en": "Threshold"},
    "chart.time": {"vi": "Thời gian", "en": "Time"},
    "chart.error": {"vi": "Không tải được số liệu biểu đồ", "en": "Cannot load the chart data"},
    "range.day": {"vi": "Ngày", "en": "Day"},
    "range.week": {"vi": "Tuần", "en": "Week"},
    "range.month": {"vi": "Tháng", "en": "Month"},
    "range.year": {"vi": "Năm", "en": "Year"},
    "months.title": {"vi": "Các tháng năm {year}", "en": "The months of {year}"},
    "months.so_far": {"vi": "Từ đầu năm", "en": "Year so far"},
    "months.future": {"vi": "chưa tới", "en": "not yet"},
    "checks.title": {"vi": "Kiểm tra số liệu (30 ngày)", "en": "Data checks (30 days)"},
    "checks.none": {"vi": "không có số liệu", "en": "no figure"},
    "checks.counter_power": {"vi": "Bộ đếm so với tích phân công suất",
                             "en": "Counter against integrated power"},
    "meters.title": {"vi": "Công tơ và thiết bị đo", "en": "Meters"},
    "state.never": {"vi": "○ Chưa đọc", "en": "○ Not polled yet"},
    "dev.profile": {"vi": "Hồ sơ thiết bị", "en": "Profile"},
    "profile.configured": {"vi": "khai báo trong cấu hình", "en": "set in the configuration"},
    "profile.identified": {"vi": "tự nhận dạng khi đọc", "en": "identified by probing"},
    "dev.identified_why": {"vi": "Lý do chọn hồ sơ", "en": "Why this profile"},
    "dev.identified_at": {"vi": "nhận dạng lúc", "en": "identified at"},
    "dev.last_poll": {"vi": "Lần đọc gần nhất", "en": "Last poll"},
    "dev.interval": {"vi": "Chu kỳ đọc", "en": "Poll interval"},
    "readings.title": {"vi": "Số đọc gần nhất", "en": "Latest readings"},
    "readings.metric": {"vi": "Đại lượng", "en": "Metric"},
    "readings.label": {"vi": "Nhãn (pha, ổ cắm)", "en": "Label (phase, outlet)"},
    "readings.value": {"vi": "Giá trị", "en": "Value"},
    "readings.quality": {"vi": "Chất lượng", "en": "Quality"},
    "readings.none": {"vi": "Không có số đọc trong giờ qua.",
                      "en": "No reading in the last hour."},
    "quality.ok": {"vi": "hợp lệ", "en": "valid"},
    "quality.not_available": {"vi": "thiết bị báo không có", "en": "not available"},
    "quality.decode_error": {"vi": "lỗi giải mã", "en": "decode error"},
    "quality.clock_back": {"vi": "đồng hồ bị lùi", "en": "clock went back"},
    "error.404": {"vi": "Không tìm thấy trang này.", "en": "This page does not exist."},
    "error.title.404": {"vi": "Không tìm thấy", "en": "Not found"},
    "error.title.500": {"vi": "Lỗi máy chủ", "en": "Server error"},
    "error.title.other": {"vi": "Không thực hiện được yêu cầu",
                          "en": "The request cannot be served"},
    "error.back": {"vi": "Về trang tổng quan", "en": "Back to the overview"},
    "metric.active_power_w": {"vi": "Công suất tác dụng (W)", "en": "Active power (W)"},
    "metric.active_energy_kwh": {"vi": "Điện năng tác dụng, bộ đếm (kWh)",
                                 "en": "Active energy, counter (kWh)"},
    "metric.apparent_power_va": {"vi": "Công suất biểu kiến (VA)", "en": "Apparent power (VA)"},
    "metric.current_a": {"vi": "Dòng điện hiệu dụng (A)", "en": "RMS current (A)"},
    "metric.voltage_v": {"vi": "Điện áp hiệu dụng (V)", "en": "RMS voltage (V)"},
    "metric.frequency_hz": {"vi": "Tần số (Hz)", "en": "Frequency (Hz)"},
    "metric.power_factor": {"vi": "Hệ số công suất", "en": "Power factor"},
    "metric.load_pct": {"vi": "Tải so với công suất định mức (%)",
                        "en": "Load of rated capacity (%)"},
    "metric.temperature_c": {"vi": "Nhiệt độ (°C)", "en": "Temperature (°C)"},
    "metric.water_m3": {"vi": "Lượng nước, bộ đếm (m³)", "en": "Water volume, counter (m³)"},
}


def t(key: str, lang: str, **params: object) -> str:
    """The string for ``key`` in ``lang``; a missing key shows itself rather than failing."""
    entry = CATALOGUE.get(key)
    text = entry.get(lang, entry[DEFAULT_LANG]) if entry else key
    return text.format(**params) if params else text


def strings(lang: str) -> dict[str, str]:
    """The whole catalogue in one language, for the refresh script."""
    return {key: entry.get(lang, entry[DEFAULT_LANG]) for key, entry in CATALOGUE.items()}


def other_lang(lang: str) -> str:
    return "en" if lang == "vi" else "vi"


def normalise_lang(value: str | None) -> str | None:
    """A supported language code, or None for anything else."""
    value = (value or "").strip().lower()
    return value if value in LANGS else None
