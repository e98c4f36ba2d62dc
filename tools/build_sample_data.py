"""Build the shipped KTO sample sets (kto_plugin/embedded/sample_data/kto-sample-{en,zh}.jsonl).

Each scenario below was written for this project: a request, one accepted answer and
one short accepted alternative. The rejected answers are built from the scenario so that
many of them are *near misses*: the same correct content said rudely, or with an absolute
promise the support team cannot keep, next to plainly unhelpful and off-topic replies.

Run from the repository root; the output is deterministic:

    python tools/build_sample_data.py
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

OUT_DIR = Path(__file__).resolve().parents[1] / "kto_plugin" / "embedded" / "sample_data"

# (category, query, accepted answer, short accepted alternative)
EN_SCENARIOS = [
    ("support", "My order hasn't arrived and it's been 10 days. What can I do?",
     "I'm sorry your order is late. Please send me the order number and I'll check the carrier's tracking. If it is lost, we can reship it or refund you, whichever you prefer.",
     "Sorry for the wait. Share your order number and I'll trace the parcel; if it's lost we'll reship or refund."),
    ("support", "How do I reset my password?",
     "Go to the sign-in page and click 'Forgot password'. Enter your account email and follow the link we send you; it is valid for 30 minutes. If the email doesn't arrive, check your spam folder or ask me to resend it.",
     "Use 'Forgot password' on the sign-in page and follow the emailed link. Check spam if you don't see it."),
    ("support", "I want to cancel my subscription.",
     "I can help with that. You can cancel under Account > Billing > Cancel plan; you keep access until the end of the current period. If cost is the reason, I can also offer a cheaper plan or a one-month pause.",
     "You can cancel under Account > Billing. Access lasts until the period ends, and a pause is also possible."),
    ("support", "The blender I received is cracked. Can I get a replacement?",
     "I'm sorry it arrived damaged. Please send a photo of the crack and your order number, and I'll arrange a free replacement. If you'd rather have your money back, a refund is also an option.",
     "Sorry about that. Send a photo and the order number and we'll replace it for free or refund you."),
    ("support", "Can I change the delivery address for my order?",
     "Yes, if the order hasn't shipped yet. Tell me the order number and the new address and I'll update it. If it has already shipped, I can ask the carrier to redirect it, though that isn't always possible.",
     "If it hasn't shipped, send the order number and new address and I'll change it; otherwise we can try a carrier redirect."),
    ("support", "I was charged twice for the same order.",
     "Sorry about the double charge. Please share the order number and the last four digits of the card. If both charges went through, I'll refund the duplicate; it usually shows on your statement within 5-10 business days.",
     "Send the order number and card's last four digits; I'll refund the duplicate charge, usually within 5-10 business days."),
    ("support", "How long does a refund take?",
     "Once we receive the returned item, we process the refund within 2 business days. Your bank then usually needs 5-10 business days to show it. I can check the status for you if you share your order number.",
     "We process it within 2 business days of receiving the return; banks usually take 5-10 more days."),
    ("support", "Do you ship to Canada?",
     "Yes, we ship to Canada. Standard delivery usually takes 7-12 business days, and import duties may apply at delivery. You'll see the exact shipping cost at checkout before you pay.",
     "Yes. Delivery to Canada usually takes 7-12 business days; duties may apply."),
    ("support", "My discount code isn't working.",
     "Let's sort it out. Codes are case-sensitive and some exclude sale items or need a minimum order. If you tell me the code and what's in your cart, I'll check why it's rejected or suggest another offer.",
     "Check the spelling and the code's conditions; tell me the code and I'll look into it."),
    ("support", "I can't log in to the app after the update.",
     "Sorry for the trouble. Please make sure the app is on the latest version, then try signing out and back in. If it still fails, send me the error message you see and your phone model, and I'll escalate it to our engineers.",
     "Update the app and sign in again; if it still fails, send me the error message so I can escalate."),
    ("support", "Can I return a product I bought 45 days ago?",
     "Our standard return window is 30 days, so this one is outside it. However, if the product is faulty it's still covered by the one-year warranty, and I can start a warranty claim for you. What's the issue with it?",
     "It's past our 30-day window, but if it's faulty the warranty covers it and I can open a claim."),
    ("support", "Why is my package stuck in customs?",
     "Customs checks can take a few days, especially when paperwork or duties are pending. I'll contact the carrier for details. Meanwhile, please check whether they've emailed you a request to pay duties or provide ID.",
     "Customs can take a few days; I'll ask the carrier, and please check for any duty request email."),
    ("support", "How do I update my credit card details?",
     "Go to Account > Billing > Payment methods, add the new card, and set it as default. You can then remove the old card. The change applies from your next invoice.",
     "Add the new card under Account > Billing > Payment methods and make it the default."),
    ("support", "The product I ordered is out of stock. When will it be back?",
     "We expect a restock in about two weeks, but dates can move. I can add you to the back-in-stock alert, or suggest a similar item that ships today.",
     "Restock is expected in about two weeks; I can set an alert or suggest an alternative."),
    ("support", "Your delivery driver left my parcel in the rain and it got wet.",
     "I'm sorry, that shouldn't happen. Please send photos of the parcel and any damaged items. I'll report it to the carrier and arrange a replacement or refund for anything that was damaged.",
     "Sorry about that. Send photos and I'll report it and replace or refund what was damaged."),
    ("support", "Can I speak to a manager?",
     "Of course. I'll pass your case to a supervisor; they usually reply within one business day. To speed things up, could you tell me briefly what went wrong so they have the full picture?",
     "Sure, I'll escalate to a supervisor; a short summary of the issue will help them reply faster."),
    ("support", "Is my personal data shared with third parties?",
     "We share data only with the services needed to run your order, like payment processors and carriers, and we don't sell it. You can read the details in our privacy policy and request a copy or deletion of your data at any time.",
     "Only with services needed for your order, such as carriers; we don't sell it, and you can request deletion."),
    ("support", "I forgot to apply my gift card at checkout.",
     "No problem. If the order hasn't shipped, I can cancel and re-place it with the gift card. Otherwise I can add the amount back as store credit. Which would you prefer?",
     "I can re-place the order with the gift card or give you store credit for the amount."),
    ("writing", "Write a short apology email to a customer whose order was delayed.",
     "Subject: Sorry for the delay\n\nDear Alex,\n\nWe're sorry your order is running late. It has now left our warehouse and should reach you by Friday. As a thank-you for your patience, we've added a 10% discount code to your account.\n\nBest regards,\nThe Support Team",
     "Dear Alex, we're sorry your order is late. It ships today and should arrive by Friday. Thank you for your patience. Best, The Support Team"),
    ("writing", "Write a one-sentence product description for a stainless steel water bottle.",
     "A leak-proof stainless steel bottle that keeps drinks cold for 24 hours and hot for 12, light enough for any commute.",
     "Keeps drinks cold for a day and hot for 12 hours, in a light, leak-proof steel bottle."),
    ("writing", "Give me a friendly reminder message for a team meeting tomorrow at 10am.",
     "Hi everyone, a quick reminder that we're meeting tomorrow at 10:00 in the usual room (and on the video link). Please bring your weekly updates. See you there!",
     "Reminder: team meeting tomorrow at 10am, usual place. Bring your updates!"),
    ("writing", "Write a polite message declining a meeting invitation.",
     "Thank you for the invitation. Unfortunately I can't attend on Thursday because of a prior commitment. Could you share the notes afterwards, or would another time next week work?",
     "Thanks for the invite; I can't make Thursday. Could we find another time or could you share notes?"),
    ("writing", "Write a tweet announcing our new opening hours.",
     "From Monday we're open longer: 8am-8pm on weekdays and 10am-6pm on weekends. Come by after work and say hi!",
     "New hours from Monday: weekdays 8-8, weekends 10-6. See you soon!"),
    ("writing", "Draft a thank-you note to a colleague who helped with a project.",
     "Hi Sam, thank you for jumping in on the report last week. Your analysis of the survey data made the final version much stronger, and it saved me two days of work. I really appreciate it.",
     "Sam, thanks so much for your help on the report; your data analysis made a real difference."),
    ("writing", "Write a short out-of-office reply.",
     "Thank you for your email. I'm out of the office until Monday 14 April with limited access to email. For urgent matters, please contact Jordan at jordan@example.com. I'll reply when I'm back.",
     "I'm away until 14 April. For urgent issues please contact Jordan; I'll reply when I return."),
    ("writing", "Rewrite this more formally: 'hey, the report's late, sorry, will send tmrw'.",
     "Hello, I apologise for the delay with the report. I will send it to you tomorrow.",
     "Apologies for the delay; the report will be with you tomorrow."),
    ("writing", "Suggest a title for a blog post about saving money on groceries.",
     "\"Eat Well for Less: 10 Simple Ways to Cut Your Grocery Bill\"",
     "\"Smart Shopping: Spend Less on Groceries Without Eating Worse\""),
    ("writing", "Write a short welcome message for new newsletter subscribers.",
     "Welcome aboard! Every Tuesday you'll get one practical tip, one recipe and one story from our community. If there's a topic you'd like us to cover, just reply to this email.",
     "Thanks for subscribing! Expect one tip, one recipe and one story every Tuesday."),
    ("writing", "Write a two-line poem about autumn.",
     "The maple spends its gold on the evening wind,\nand the path keeps every coin it's given.",
     "Leaves let go of summer one by one,\nand the cool air counts them as they fall."),
    ("explain", "What is an API, in simple terms?",
     "An API is a set of rules that lets one program ask another for data or actions. Like a waiter in a restaurant, it takes your request to the kitchen and brings back the result, so you don't need to know how the kitchen works.",
     "It's a defined way for programs to talk to each other: you send a request, and get a response back."),
    ("explain", "Why is the sky blue?",
     "Sunlight contains all colours. When it passes through the air, the tiny gas molecules scatter short wavelengths (blue) much more than long ones (red). That scattered blue light reaches our eyes from every direction, so the sky looks blue.",
     "Air molecules scatter blue light more than red light, so blue light comes at us from all over the sky."),
    ("explain", "How does compound interest work?",
     "With compound interest you earn interest on your original money and on the interest already added. For example, 5% a year on 1,000 gives 1,050 after one year and 1,102.50 after two, because the second year's 5% is applied to 1,050.",
     "You earn interest on past interest too, so the balance grows faster each year."),
    ("explain", "What's the difference between RAM and storage?",
     "RAM is fast, temporary memory the computer uses for what it's working on right now; it is cleared when the power goes off. Storage (an SSD or hard drive) is slower but keeps your files and programs permanently.",
     "RAM is fast short-term working memory; storage keeps files permanently but is slower."),
    ("explain", "What does a VPN do?",
     "A VPN creates an encrypted tunnel between your device and a VPN server. Websites see the server's address instead of yours, and people on the same network, like public Wi-Fi, can't read your traffic. It does not make you fully anonymous.",
     "It encrypts your traffic to a server and hides your IP address from the sites you visit, though it isn't full anonymity."),
    ("explain", "Explain photosynthesis to a 10-year-old.",
     "Plants make their own food. Their leaves catch sunlight, take in water from the roots and carbon dioxide from the air, and turn them into sugar for energy. As a bonus, they release the oxygen we breathe.",
     "Plants use sunlight, water and air to make sugar for food, and give off oxygen."),
    ("explain", "What is inflation?",
     "Inflation is the general rise in prices over time, which means the same money buys less. If inflation is 3%, something that cost 100 last year costs about 103 now.",
     "Prices rising over time, so each unit of money buys a little less."),
    ("explain", "How do vaccines work?",
     "A vaccine shows your immune system a harmless piece or weakened form of a germ. Your body learns to recognise it and makes antibodies and memory cells, so if the real germ appears later, it can fight it off faster.",
     "They train the immune system with a harmless version of a germ so it reacts fast to the real one."),
    ("explain", "What's the difference between weather and climate?",
     "Weather is what the atmosphere does over hours or days, like today's rain. Climate is the average pattern over decades in a region, like how wet a place usually is.",
     "Weather is short-term conditions; climate is the long-term average."),
    ("explain", "Why do we have leap years?",
     "A year around the sun takes about 365.25 days. Adding one day every four years keeps the calendar in step with the seasons; century years skip it unless divisible by 400, to correct the small remaining error.",
     "Because a solar year is about 365.25 days, so an extra day every four years keeps the calendar aligned."),
    ("explain", "What is machine learning?",
     "Machine learning is a way of building programs that learn patterns from examples instead of following hand-written rules. For example, after seeing many labelled emails, a model can learn to spot spam.",
     "Programs that learn patterns from examples rather than being told every rule."),
]

ZH_SCENARIOS = [
    ("support", "我的订单已经十天了还没到，怎么办？",
     "很抱歉让您久等了。请提供订单号，我马上帮您查询物流。如果包裹丢失，我们可以为您补发或者退款，您选哪一种都可以。",
     "抱歉久等。请发一下订单号，我来查物流；如果丢件，可以补发或退款。"),
    ("support", "怎么重置密码？",
     "请在登录页点击“忘记密码”，输入注册邮箱，然后按照邮件里的链接操作，链接30分钟内有效。如果没收到邮件，请看看垃圾邮件箱，或者告诉我帮您重新发送。",
     "在登录页点“忘记密码”，按邮件链接操作即可；没收到请查看垃圾邮件箱。"),
    ("support", "我想取消会员订阅。",
     "可以的。您可以在“账户 > 账单 > 取消套餐”中取消，本期结束前仍可继续使用。如果是费用原因，我们也可以为您换成更便宜的套餐，或者暂停一个月。",
     "在“账户 > 账单”里可以取消，本期内仍可使用；也可以选择暂停。"),
    ("support", "收到的杯子是碎的，能换一个吗？",
     "非常抱歉商品到货时有损坏。请拍一张破损照片并告诉我订单号，我为您免费换新；如果您更想退款，也可以直接退款。",
     "抱歉！请发照片和订单号，我们免费换新或退款。"),
    ("support", "订单能改收货地址吗？",
     "如果订单还没发货，是可以改的。请告诉我订单号和新地址，我来帮您修改。如果已经发货，我可以联系快递尝试改派，但不一定都能成功。",
     "未发货可以改，请发订单号和新地址；已发货的话我们尝试联系快递改派。"),
    ("support", "同一个订单被扣了两次钱。",
     "抱歉给您带来麻烦。请提供订单号和银行卡后四位，我来核实。如果确实重复扣款，我会把多扣的那笔退回，一般5到10个工作日到账。",
     "请发订单号和卡号后四位，核实后退回重复扣款，一般5到10个工作日到账。"),
    ("support", "退款要多久才能到账？",
     "我们收到退货后会在2个工作日内处理退款，之后银行通常需要5到10个工作日入账。您告诉我订单号的话，我可以帮您查进度。",
     "收到退货后2个工作日内处理，银行入账一般再需5到10个工作日。"),
    ("support", "你们能寄到海外吗？",
     "可以寄往大多数国家和地区，国际快递一般需要7到15个工作日，部分地区可能需要缴纳进口关税。结账时会先显示准确运费，您确认后再付款。",
     "可以，国际快递一般7到15个工作日，可能产生关税。"),
    ("support", "优惠券用不了。",
     "我来帮您看看。优惠券通常有使用门槛、有效期，部分特价商品不能叠加。您把券码和购物车里的商品告诉我，我帮您查原因，或者推荐其他可用的优惠。",
     "请检查有效期和使用门槛；把券码发给我，我帮您查。"),
    ("support", "更新以后App登录不上了。",
     "抱歉给您带来不便。请先确认App已更新到最新版本，然后退出重新登录。如果还是不行，请把看到的错误提示和手机型号发给我，我会转给技术同事处理。",
     "请更新到最新版后重新登录；仍不行请发错误提示，我转技术处理。"),
    ("support", "买了45天的东西还能退吗？",
     "我们的无理由退货期是30天，这件已经超过了。不过如果商品有质量问题，仍在一年保修期内，我可以帮您申请保修。请问具体是什么问题呢？",
     "已超过30天退货期，但有质量问题可以走一年保修，我帮您申请。"),
    ("support", "包裹一直卡在海关是怎么回事？",
     "海关查验有时需要几天，特别是需要补充资料或缴纳税费的时候。我会联系快递了解具体情况，也请您留意是否收到要求缴税或提供身份证明的短信或邮件。",
     "清关可能需要几天，我去问快递，也请留意缴税通知。"),
    ("support", "怎么修改绑定的银行卡？",
     "请进入“账户 > 账单 > 支付方式”，添加新卡并设为默认，然后可以删除旧卡。修改会从下一期账单开始生效。",
     "在“账户 > 支付方式”添加新卡并设为默认即可。"),
    ("support", "我要的商品缺货了，什么时候补货？",
     "预计两周左右补货，但时间可能会有变动。我可以帮您设置到货提醒，或者推荐一款今天就能发货的类似商品。",
     "预计两周左右补货，可以设到货提醒或看看替代款。"),
    ("support", "快递员把包裹放在外面淋湿了。",
     "非常抱歉，这是不应该发生的。请拍下包裹和受损商品的照片发给我，我会向快递公司反馈，并为损坏的商品安排补发或退款。",
     "抱歉！请发照片，我向快递反馈，并为损坏的商品补发或退款。"),
    ("support", "我要找你们主管。",
     "好的，我会把您的问题转给主管，一般一个工作日内回复。为了让主管尽快处理，方便简单说一下遇到了什么问题吗？",
     "可以，我转给主管，一个工作日内回复；简单描述问题会更快处理。"),
    ("support", "你们会把我的个人信息给别人吗？",
     "我们只会把完成订单所必需的信息提供给支付机构和快递公司，不会出售您的数据。详细内容可以查看隐私政策，您也可以随时申请导出或删除个人数据。",
     "只提供给完成订单必需的支付和快递服务，不会出售；可随时申请删除。"),
    ("support", "结账时忘了用礼品卡。",
     "没关系。如果订单还没发货，我可以取消后用礼品卡重新下单；如果已经发货，我可以把相应金额退成店铺余额。您看哪种方式更方便？",
     "可以重新下单使用礼品卡，或把金额退为店铺余额。"),
    ("writing", "帮我写一封给延迟发货客户的道歉邮件，简短一点。",
     "主题：关于您订单延迟的致歉\n\n尊敬的王先生：\n\n非常抱歉您的订单发货延迟了。包裹已于今天发出，预计周五送达。为感谢您的耐心等待，我们已在您的账户中添加了一张九折优惠券。\n\n客服团队 敬上",
     "王先生您好，很抱歉订单延迟。包裹今天已发出，预计周五送达，感谢您的耐心。客服团队"),
    ("writing", "用一句话介绍一款不锈钢保温杯。",
     "这款不锈钢保温杯密封不漏，冷饮保冷24小时、热饮保温12小时，轻巧好带，通勤出游都合适。",
     "保冷24小时、保温12小时，轻巧不漏水的不锈钢杯。"),
    ("writing", "写一条明天上午十点开会的提醒。",
     "各位好，提醒一下：明天上午10点在老地方开会（也可以通过视频链接参加），请带上本周的工作进展。明天见！",
     "提醒：明天上午10点开会，请带好本周进展。"),
    ("writing", "帮我写一段礼貌拒绝会议邀请的话。",
     "谢谢您的邀请。很遗憾周四我已有其他安排，无法参加。会后能否把会议纪要发我一份？或者下周换个时间也可以。",
     "感谢邀请，周四我有安排去不了，能否会后分享纪要或改个时间？"),
    ("writing", "写一条公告，说明我们营业时间调整了。",
     "从下周一起，我们的营业时间调整为：工作日早8点至晚8点，周末早10点至晚6点。下班后也欢迎来坐坐！",
     "新营业时间：工作日8点至20点，周末10点至18点，欢迎光临！"),
    ("writing", "写一段感谢同事帮忙的话。",
     "小李，谢谢你上周帮我一起赶报告。你对问卷数据的分析让最终版本更有说服力，也帮我省了两天时间，真的非常感谢！",
     "小李，谢谢你帮忙做报告，你的数据分析帮了大忙！"),
    ("writing", "写一条休假自动回复。",
     "您好，感谢来信。我4月14日前休假，期间查看邮件不及时。如有急事，请联系张敏（zhangmin@example.com）。回来后我会尽快回复您。",
     "我休假至4月14日，急事请联系张敏，回来后尽快回复。"),
    ("writing", "把这句话改得正式一点：“报告晚了，不好意思，明天发你”。",
     "您好，很抱歉报告未能按时提交，我将于明天发送给您。",
     "抱歉报告延误，明天将发送给您。"),
    ("writing", "给一篇讲省钱买菜的文章起个标题。",
     "《吃得好也能花得少：10个买菜省钱小妙招》",
     "《聪明买菜：不降品质也能省钱》"),
    ("writing", "写一段欢迎新订阅用户的话。",
     "欢迎加入！每周二你会收到一个实用小技巧、一道食谱和一个社区故事。想看什么主题，直接回复这封邮件告诉我们就好。",
     "感谢订阅！每周二送上一个技巧、一道食谱和一个故事。"),
    ("writing", "写两句关于秋天的诗。",
     "枫叶把金黄交给晚风，\n小路收好每一枚落下的硬币。",
     "树叶一片片放下夏天，\n凉风在身后轻轻数着。"),
    ("explain", "用简单的话解释什么是API。",
     "API是一套规则，让一个程序可以向另一个程序请求数据或功能。它像餐厅的服务员：你点菜，服务员把请求送到厨房，再把菜端回来，你不需要知道厨房怎么做。",
     "API就是程序之间约定好的对话方式：发请求，拿结果。"),
    ("explain", "天空为什么是蓝色的？",
     "阳光里包含各种颜色。穿过大气时，空气分子对波长短的蓝光散射得比红光强得多，被散射的蓝光从四面八方进入我们的眼睛，所以天空看起来是蓝色的。",
     "空气分子散射蓝光比红光多，所以满天都是蓝光。"),
    ("explain", "复利是怎么回事？",
     "复利就是利息也会继续产生利息。比如1000元年利率5%，一年后是1050元，第二年按1050元算利息，变成1102.5元，所以越往后增长越快。",
     "利息也会生利息，所以本金增长会越来越快。"),
    ("explain", "内存和硬盘有什么区别？",
     "内存速度快，用来存放电脑正在处理的东西，断电后内容就没了；硬盘（或固态硬盘）速度慢一些，但能长期保存文件和程序。",
     "内存快但断电清空，硬盘慢但能长期保存。"),
    ("explain", "VPN是做什么用的？",
     "VPN在你的设备和VPN服务器之间建立一条加密通道。网站看到的是服务器的地址而不是你的，同一个网络里的人（比如公共Wi-Fi）也看不到你的流量内容。但它并不能让你完全匿名。",
     "它加密你的网络流量并隐藏你的IP地址，但不等于完全匿名。"),
    ("explain", "给十岁小孩解释一下光合作用。",
     "植物会自己做饭。叶子吸收阳光，再用根吸上来的水和空气里的二氧化碳，做成糖给自己提供能量，同时还会放出我们呼吸需要的氧气。",
     "植物用阳光、水和空气做出糖当食物，还放出氧气。"),
    ("explain", "什么是通货膨胀？",
     "通货膨胀是指物价总体持续上涨，同样的钱能买到的东西变少了。比如通胀率3%，去年100元的东西现在大约要103元。",
     "物价整体上涨，同样的钱能买的东西变少。"),
    ("explain", "疫苗是怎么起作用的？",
     "疫苗让免疫系统先认识病原体的无害片段或减毒版本，身体会产生抗体和记忆细胞。以后真的病原体来了，免疫系统就能更快地把它消灭。",
     "用无害的“样本”训练免疫系统，真病菌来了就能快速应对。"),
    ("explain", "天气和气候有什么区别？",
     "天气是几小时到几天内的大气状况，比如今天下雨；气候是一个地区几十年的平均规律，比如那里通常有多潮湿。",
     "天气是短期状况，气候是长期平均。"),
    ("explain", "为什么会有闰年？",
     "地球绕太阳一圈大约是365.25天。每四年加一天能让日历和季节保持一致；整百的年份要能被400整除才是闰年，用来修正剩下的小误差。",
     "因为一年约365.25天，每四年补一天才能跟上季节。"),
    ("explain", "什么是机器学习？",
     "机器学习是让程序从大量例子中自己总结规律，而不是靠人一条条写规则。比如看过很多标注好的邮件之后，模型就能学会识别垃圾邮件。",
     "让程序从例子中学规律，而不是人工写规则。"),
]

# Near-miss and plain rejections, built around each scenario.
EN_REJECTS = {
    "rude": [
        "Honestly, this is obvious. {answer}",
        "Ugh, fine. {answer} Try reading the help page next time.",
        "{answer} Don't make me explain it again.",
        "I don't know why people keep asking this. {answer}",
    ],
    "promise": [
        "{answer} I guarantee 100% this will never happen again.",
        "Don't worry, I promise everything will be perfect by tomorrow, no matter what.",
        "{answer} This is absolutely guaranteed to work for everyone, every time.",
    ],
    "dismissive": [
        "I can't help with that.",
        "Please check the website.",
        "That's not my department.",
        "No idea, sorry.",
        "Contact someone else about this.",
    ],
    "off_topic": [
        "Have you seen our new summer collection? It's 20% off this week!",
        "Thanks for your message. Our office is closed on public holidays.",
        "Great question! By the way, did you know we also sell gift cards?",
    ],
}

ZH_REJECTS = {
    "rude": [
        "这都不知道？{answer}",
        "烦不烦啊，{answer}下次自己先看帮助页面。",
        "{answer}别再问同样的问题了。",
        "不明白为什么总有人问这个。{answer}",
    ],
    "promise": [
        "{answer}我保证百分之百不会再出现任何问题。",
        "放心，明天之前一定全部搞定，绝对没问题。",
        "{answer}这个方法对所有人都绝对有效，保证每次都成功。",
    ],
    "dismissive": [
        "这个我帮不了。",
        "自己去官网看。",
        "这不归我管。",
        "不知道。",
        "找别人问吧。",
    ],
    "off_topic": [
        "欢迎关注我们的夏季新品，本周八折！",
        "感谢留言，法定节假日我们不上班。",
        "好问题！顺便说一下，我们也卖礼品卡哦。",
    ],
}

EN_SYSTEM = "You are a helpful, polite assistant for an online shop. Never promise what you cannot guarantee."
ZH_SYSTEM = "你是一家网店的客服助手，回答要礼貌、有帮助，不要做无法兑现的承诺。"

EN_FOLLOWUP = ("Thanks. One more question.", "Of course, what would you like to know?")
ZH_FOLLOWUP = ("谢谢。我还有一个问题。", "好的，请问还有什么可以帮您？")


def build_rows(scenarios, rejects, system, followup, seed):
    rng = random.Random(seed)
    rows = []
    for index, (category, query, accepted, accepted_short) in enumerate(scenarios):
        base = {"query": query}
        if category == "support":
            base["system"] = system
        if index % 5 == 4:
            base["history"] = [list(followup)]
        candidates = [
            (accepted, True),
            (accepted_short, True),
            (rng.choice(rejects["rude"]).format(answer=accepted), False),
            (rng.choice(rejects["promise"]).format(answer=accepted_short), False),
            (rng.choice(rejects["dismissive"]), False),
        ]
        candidates.append((rng.choice(rejects["off_topic"]), False))
        if index % 3 != 2:
            # A third accepted phrasing: the short answer plus the full answer's last sentence.
            last_sentence = [s for s in re.split(r"(?<=[.。])\s*", accepted) if s][-1]
            candidates.append((f"{accepted_short} {last_sentence}".strip(), True))
        for response, label in candidates:
            rows.append({**base, "response": response, "label": label})
    rng.shuffle(rows)
    return rows


def main():
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    sets = {
        "kto-sample-en": build_rows(EN_SCENARIOS, EN_REJECTS, EN_SYSTEM, EN_FOLLOWUP, seed=7),
        "kto-sample-zh": build_rows(ZH_SCENARIOS, ZH_REJECTS, ZH_SYSTEM, ZH_FOLLOWUP, seed=7),
    }
    for name, rows in sets.items():
        path = OUT_DIR / f"{name}.jsonl"
        with path.open("w", encoding="utf-8") as handle:
            for row in rows:
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        desirable = sum(row["label"] for row in rows)
        print(f"{path}: {len(rows)} rows, {desirable} accepted, {len(rows) - desirable} rejected")


if __name__ == "__main__":
    main()
