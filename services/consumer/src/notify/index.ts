export {
  buildNotice,
  noticeIdOf,
  noticeMessage,
  NOTICE_TYPE,
  type ClosedNotice,
  type NoticeMessage,
} from './notice.js';
export { ClosedWindowNotifier, noticeName, noticePrefix, type WindowNotices } from './notifier.js';
